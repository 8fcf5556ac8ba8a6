import Testing

@testable import P2P

/// One connection's requests as a value: answers in order, failures that fit, the window
/// from the measured rate, stalls, all with the time passed in.
@Suite("RequestPipeline")
struct RequestPipelineTests {
    let start = ContinuousClock.now

    @Test("answers come in the order the requests went; anything else is a protocol violation")
    func answersInOrder() throws {
        var pipeline = RequestPipeline(now: self.start)
        pipeline.expect(.inventory, now: self.start)
        pipeline.expect(.chunk(3), now: self.start)
        pipeline.expect(.work, now: self.start)
        #expect(pipeline.requestsInFlight == 2)
        #expect(pipeline.chunksInFlight == [3])
        #expect(pipeline.isAnswering(.inventory) && pipeline.isExpecting(.work))
        #expect(throws: P2PError.self) { try pipeline.answered(.chunk(3), bytes: 10, now: self.start) }
        try pipeline.answered(.inventory, bytes: 0, now: self.start)
        try pipeline.answered(.chunk(3), bytes: 10, now: self.start)
        #expect(pipeline.isAnswering(.work))
    }

    @Test("a failure must answer the oldest request, and a chunk failure that chunk")
    func failuresThatFit() throws {
        var pipeline = RequestPipeline(now: self.start)
        #expect(throws: P2PError.self) { try pipeline.answeredWithFailure(chunk: 0) }
        pipeline.expect(.chunk(5), now: self.start)
        #expect(throws: P2PError.self) { try pipeline.answeredWithFailure(chunk: 6) }
        let answered = try pipeline.answeredWithFailure(chunk: 5)
        #expect(answered == .chunk(5))
        pipeline.expect(.work, now: self.start)
        let answeredAgain = try pipeline.answeredWithFailure(chunk: 0)
        #expect(answeredAgain == .work)
        #expect(pipeline.requestsInFlight == 0)
    }

    @Test("the window is the initial one until a rate is measured, then covers the latency plus two")
    func windowFromRate() throws {
        var configuration = Downloader.Configuration()
        configuration.windowLatency = .milliseconds(100)
        configuration.maximumWindow = 32
        let chunk = 256 * 1024
        var pipeline = RequestPipeline(now: self.start)
        #expect(pipeline.window(chunkSize: chunk, initial: 8, configuration: configuration) == 8)
        // 10 chunks in 100 ms: 25 MiB/s, of which 100 ms is 10 chunks.
        for _ in 0..<10 { pipeline.expect(.chunk(0), now: self.start) }
        for index in 0..<10 {
            let at = self.start + .milliseconds(10 * (index + 1))
            try pipeline.answered(.chunk(0), bytes: chunk, now: at)
        }
        #expect(pipeline.window(chunkSize: chunk, initial: 8, configuration: configuration) == 12)
        // A fast link is capped.
        pipeline.expect(.chunk(0), now: self.start)
        try pipeline.answered(.chunk(0), bytes: 1 << 30, now: self.start + .milliseconds(300))
        #expect(pipeline.window(chunkSize: chunk, initial: 8, configuration: configuration) == 32)
    }

    @Test("a pipeline is stalled only while something is awaited longer than the timeout")
    func stalls() throws {
        var pipeline = RequestPipeline(now: self.start)
        let stalled = pipeline.isStalled(after: .seconds(1), now: self.start + .seconds(10))
        #expect(!stalled)
        pipeline.expect(.chunk(1), now: self.start + .seconds(10))
        let stalledAgain = pipeline.isStalled(after: .seconds(1), now: self.start + .milliseconds(10_500))
        #expect(!stalledAgain)
        pipeline.madeProgress(now: self.start + .milliseconds(10_900))
        let stalledThird = pipeline.isStalled(after: .seconds(1), now: self.start + .milliseconds(11_800))
        #expect(!stalledThird)
        #expect(!pipeline.timedOut)
        let stalledFourth = pipeline.isStalled(after: .seconds(1), now: self.start + .seconds(12))
        #expect(stalledFourth)
        #expect(pipeline.timedOut)
    }
}
