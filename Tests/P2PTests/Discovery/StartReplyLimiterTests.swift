import NIOCore
import P2P
import Testing

/// Answers to `start` are rate-limited per source and overall, with time passed in.
@Suite("StartReplyLimiter")
struct StartReplyLimiterTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    @Test("one source gets its burst, then its refill rate, however many starts it sends")
    func perSource() {
        var limiter = StartReplyLimiter()
        let bystander: UInt32 = 0xC0A8_0107
        let first = (0..<1000).filter { _ in limiter.allow(bystander, now: Self.t0) }.count
        #expect(first == 16)
        // One second later: 8 more, not 1000.
        let later = (0..<1000).filter { _ in limiter.allow(bystander, now: Self.t0 + .seconds(1)) }.count
        #expect(later == 8)
        // Another source is not held back by the first.
        let other = limiter.allow(0xC0A8_0108, now: Self.t0 + .seconds(1))
        #expect(other)
    }

    @Test("many sources together get the overall burst, then the overall rate")
    func overall() {
        var limiter = StartReplyLimiter()
        var allowed = 0
        for source in 0..<10_000 as Range<UInt32> where limiter.allow(0x0A00_0000 | source, now: Self.t0) {
            allowed += 1
        }
        #expect(allowed == 64)
        var later = 0
        for source in 10_000..<20_000 as Range<UInt32>
        where limiter.allow(0x0A00_0000 | source, now: Self.t0 + .seconds(1)) {
            later += 1
        }
        #expect(later == 32)
        #expect(limiter.trackedSources <= 1024)
    }

    @Test("the sources tracked stay bounded; idle ones are forgotten to make room")
    func boundedSources() {
        var limiter = StartReplyLimiter(
            limits: StartReplyLimiter.Limits(totalBurst: 1e9, totalPerSecond: 1e9, maximumSources: 4)
        )
        let firstFour = (0..<4 as Range<UInt32>).map { limiter.allow($0, now: Self.t0) }
        #expect(firstFour == [true, true, true, true])
        // All four are still refilling: a fifth source gets no answer.
        let fifth = limiter.allow(99, now: Self.t0)
        #expect(!fifth)
        #expect(limiter.trackedSources == 4)
        // Once their buckets are full again they are forgotten.
        let fifthLater = limiter.allow(99, now: Self.t0 + .seconds(1))
        #expect(fifthLater)
        #expect(limiter.trackedSources == 1)
    }
}
