import NIOCore
import P2P
import Testing

/// When discovery speaks: jittered announcements, `start` again while alone, spread answers.
@Suite("AnnounceSchedule")
struct AnnounceScheduleTests {
    static let interval = TimeAmount.seconds(2)

    @Test("start at once and after 250 ms, then alive after 80-100 % of the interval, never later")
    func jitteredAlives() {
        var schedule = AnnounceSchedule(interval: Self.interval)
        var random = SeededRandom(seed: 1)
        #expect(schedule.next(heardAnyone: false, using: &random) == .init(delay: .zero, kind: .start))
        #expect(schedule.next(heardAnyone: false, using: &random) == .init(delay: .milliseconds(250), kind: .start))
        var delays: [TimeAmount] = []
        for _ in 0..<1000 {
            let step = schedule.next(heardAnyone: true, using: &random)
            #expect(step.kind == .alive)
            delays.append(step.delay)
        }
        #expect(delays.allSatisfy { $0 >= .milliseconds(1600) && $0 <= Self.interval })
        // Spread over the range, not stuck at one value: peers started together drift apart.
        #expect(delays.min()! < .milliseconds(1650) && delays.max()! > .milliseconds(1950))
    }

    @Test("while nobody is heard, start goes out in place of alive, a bounded number of times")
    func startWhileAlone() {
        var schedule = AnnounceSchedule(interval: Self.interval)
        var random = SeededRandom(seed: 2)
        var kinds: [Announcement.Kind] = []
        for _ in 0..<20 { kinds.append(schedule.next(heardAnyone: false, using: &random).kind) }
        #expect(kinds.prefix(2 + AnnounceSchedule.maximumStartRepeats).allSatisfy { $0 == .start })
        #expect(kinds.dropFirst(2 + AnnounceSchedule.maximumStartRepeats).allSatisfy { $0 == .alive })
    }

    @Test("the same seed gives the same timing")
    func deterministic() {
        func run(_ seed: UInt64) -> [TimeAmount] {
            var schedule = AnnounceSchedule(interval: Self.interval)
            var random = SeededRandom(seed: seed)
            return (0..<50).map { _ in schedule.next(heardAnyone: true, using: &random).delay }
                + (0..<50).map { _ in AnnounceSchedule.answerDelay(knownPeers: 300, using: &random) }
        }
        #expect(run(7) == run(7))
        #expect(run(7) != run(8))
    }

    @Test(
        "answers to a start spread over a window that grows with the swarm, from 20 ms to 500 ms",
        arguments: [(0, 20), (10, 20), (100, 50), (1000, 500), (100_000, 500)]
    )
    func answerWindow(peers: Int, milliseconds: Int64) {
        #expect(AnnounceSchedule.answerWindow(knownPeers: peers) == .milliseconds(milliseconds))
        var random = SeededRandom(seed: UInt64(peers))
        let delays = (0..<2000).map { _ in AnnounceSchedule.answerDelay(knownPeers: peers, using: &random) }
        #expect(delays.allSatisfy { $0 >= .zero && $0 <= .milliseconds(milliseconds) })
        // 1,000 answers over the window: no 10 % of it takes more than a fifth of them.
        let window = TimeAmount.milliseconds(milliseconds).nanoseconds
        let buckets = Dictionary(grouping: delays) { min(9, Int($0.nanoseconds * 10 / (window + 1))) }
        #expect(buckets.values.allSatisfy { $0.count < 400 })
    }
}
