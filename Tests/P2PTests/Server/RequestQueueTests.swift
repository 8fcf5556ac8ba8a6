import Testing

@testable import P2P

@Suite("RequestQueue: which request goes up to the responder, and when the socket is read")
struct RequestQueueTests {
    func queue(
        maximumQueued: Int = 4,
        maximumQueuedBytes: Int = 1_000,
        maximumUnsentBytes: Int = 100
    )
        -> RequestQueue<String>
    {
        RequestQueue(
            maximumQueued: maximumQueued,
            maximumQueuedBytes: maximumQueuedBytes,
            maximumUnsentBytes: maximumUnsentBytes
        )
    }

    @Test("a request goes up only when the responder wants one, one per ask, in order")
    func oneAtATime() {
        var queue = self.queue()
        let early = queue.arrived("a", bytes: 10)
        #expect(early == nil)
        let second = queue.arrived("b", bytes: 10)
        #expect(second == nil)
        let first = queue.wanted()
        #expect(first == "a")
        // The responder has its request; the next waits for the next ask.
        let third = queue.arrived("c", bytes: 10)
        #expect(third == nil)
        let next = queue.wanted()
        #expect(next == "b")
        let last = queue.wanted()
        #expect(last == "c")
        #expect(queue.count == 0 && queue.queuedBytes == 0)
        // Asked with nothing waiting: the next arrival goes straight up.
        let waiting = queue.wanted()
        #expect(waiting == nil)
        let straight = queue.arrived("d", bytes: 10)
        #expect(straight == "d")
    }

    @Test("no request goes up while the answers not yet sent reach the limit; the send that frees room hands one on")
    func unsentAnswersHoldRequestsBack() {
        var queue = self.queue(maximumUnsentBytes: 100)
        queue.answerWritten(bytes: 60)
        queue.answerWritten(bytes: 40)
        _ = queue.arrived("a", bytes: 10)
        let held = queue.wanted()
        #expect(held == nil)
        #expect(queue.isWanted)
        let released = queue.answerSent(bytes: 60)
        #expect(released == "a")
        #expect(!queue.isWanted)
        // Sent answers with nothing wanted hand nothing on.
        _ = queue.arrived("b", bytes: 10)
        let unasked = queue.answerSent(bytes: 40)
        #expect(unasked == nil)
        #expect(queue.unsentBytes == 0)
    }

    @Test("the socket is read only while requests and their bytes stay under the limits")
    func room() {
        var byCount = self.queue(maximumQueued: 2)
        #expect(byCount.hasRoom)
        _ = byCount.arrived("a", bytes: 1)
        #expect(byCount.hasRoom)
        _ = byCount.arrived("b", bytes: 1)
        #expect(!byCount.hasRoom)
        _ = byCount.wanted()
        #expect(byCount.hasRoom)

        var byBytes = self.queue(maximumQueued: 100, maximumQueuedBytes: 300)
        _ = byBytes.arrived("push", bytes: 200)
        #expect(byBytes.hasRoom)
        _ = byBytes.arrived("push", bytes: 200)
        #expect(!byBytes.hasRoom)
        _ = byBytes.wanted()
        #expect(byBytes.hasRoom && byBytes.queuedBytes == 200)
    }

    @Test("when the connection ends, everything waiting goes up at once, whatever the limits")
    func endingHandsOnAll() {
        var queue = self.queue(maximumUnsentBytes: 10)
        queue.answerWritten(bytes: 50)
        for name in ["a", "b", "c"] { _ = queue.arrived(name, bytes: 5) }
        let all = queue.ending()
        #expect(all == ["a", "b", "c"])
        #expect(queue.count == 0 && queue.queuedBytes == 0 && queue.hasRoom)
        let nothing = queue.ending()
        #expect(nothing.isEmpty)
    }

    @Test("limits below one are taken as one")
    func limitsAtLeastOne() {
        var queue = self.queue(maximumQueued: 0, maximumQueuedBytes: 0, maximumUnsentBytes: 0)
        #expect(queue.hasRoom)
        let up = queue.wanted()
        #expect(up == nil)
        let first = queue.arrived("a", bytes: 0)
        #expect(first == "a")
        queue.answerWritten(bytes: 1)
        _ = queue.arrived("b", bytes: 0)
        let held = queue.wanted()
        #expect(held == nil)
    }
}
