import Testing

@testable import P2P

/// How long a download looks for its file, and how often it asks again.
@Suite("LookupPatience")
struct LookupPatienceTests {
    static let t0 = ContinuousClock.now

    /// The waits a look makes, failing at once each time, until it gives up.
    static func waits(_ patience: LookupPatience, from start: ContinuousClock.Instant) -> [Duration] {
        var patience = patience
        var now = start
        var waits: [Duration] = []
        // Bounded: a look without end would run past 100,000 waits of at least 1 ms.
        while waits.count < 100_000, let wait = patience.failed(now: now) {
            waits.append(wait)
            now += wait
        }
        return waits
    }

    @Test("with a deadline the look goes on until the deadline, not for a fixed few seconds")
    func untilDeadline() {
        let deadline = Self.t0 + .seconds(400)
        let waits = Self.waits(LookupPatience(started: Self.t0, deadline: deadline), from: Self.t0)
        #expect(waits.reduce(.zero, +) == .seconds(400))
        // One look a second at most once the first second is over: small work on a busy swarm.
        #expect(waits.count < 400 + 30)
        #expect(waits.max() == .seconds(1))
    }

    @Test("without a deadline the look lasts the default patience")
    func withoutDeadline() {
        let waits = Self.waits(LookupPatience(started: Self.t0, deadline: nil), from: Self.t0)
        #expect(waits.reduce(.zero, +) == LookupPatience.defaultPatience)
    }

    @Test("waits start short while the swarm answers, then grow to a second")
    func waitsGrow() {
        let waits = Self.waits(LookupPatience(started: Self.t0, deadline: Self.t0 + .seconds(10)), from: Self.t0)
        #expect(waits.prefix(20).allSatisfy { $0 == .milliseconds(50) })
        #expect(
            Array(waits[20..<25]) == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1),
            ]
        )
    }

    @Test("a look that fails after the deadline gives up at once; the last wait never passes it")
    func neverPastDeadline() {
        var patience = LookupPatience(started: Self.t0, deadline: Self.t0 + .milliseconds(30))
        #expect(patience.failed(now: Self.t0 + .milliseconds(10)) == .milliseconds(20))
        #expect(patience.failed(now: Self.t0 + .milliseconds(30)) == nil)
        #expect(patience.failed(now: Self.t0 + .seconds(5)) == nil)
    }
}
