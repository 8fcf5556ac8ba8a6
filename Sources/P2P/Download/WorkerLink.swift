import Synchronization

/// One worker's connection, shared by its sending and receiving halves: a
/// `RequestPipeline` in a `Mutex` with the clock it reads, and the wake-up of the sending
/// half.
final class WorkerLink: Sendable {
    typealias Expectation = RequestPipeline.Expectation

    private let pipeline = Mutex(RequestPipeline(now: .now))
    /// Wakes the sending half.
    let wakeup = Wakeup()

    /// Records a request about to be sent.
    func expect(_ expectation: Expectation) {
        self.pipeline.withLock { $0.expect(expectation, now: .now) }
    }

    func isExpecting(_ expectation: Expectation) -> Bool {
        self.pipeline.withLock { $0.isExpecting(expectation) }
    }

    /// Whether the next answer must be to `expectation` (answers come in order).
    func isAnswering(_ expectation: Expectation) -> Bool {
        self.pipeline.withLock { $0.isAnswering(expectation) }
    }

    /// Requests for chunks or work that are unanswered.
    var requestsInFlight: Int { self.pipeline.withLock { $0.requestsInFlight } }

    /// The chunks asked for and not yet answered.
    var chunksInFlight: [Int] { self.pipeline.withLock { $0.chunksInFlight } }

    /// Something arrived.
    func madeProgress() {
        self.pipeline.withLock { $0.madeProgress(now: .now) }
    }

    /// Whether an answer has been awaited for longer than `timeout`.
    func isStalled(after timeout: Duration) -> Bool {
        self.pipeline.withLock { $0.isStalled(after: timeout, now: .now) }
    }

    var timedOut: Bool { self.pipeline.withLock { $0.timedOut } }

    /// An answer arrived: it must be to the oldest request.
    func answered(_ expectation: Expectation, bytes: Int) throws(P2PError) {
        try self.pipeline.withLock { (pipeline) throws(P2PError) in
            try pipeline.answered(expectation, bytes: bytes, now: .now)
        }
    }

    /// A failure arrived: it answers the oldest request, which is returned.
    func answeredWithFailure(chunk: Int) throws(P2PError) -> Expectation {
        try self.pipeline.withLock { (pipeline) throws(P2PError) -> Expectation in
            try pipeline.answeredWithFailure(chunk: chunk)
        }
    }

    /// Requests to keep in flight (see `RequestPipeline.window`).
    func window(chunkSize: Int, initial: Int, configuration: Downloader.Configuration) -> Int {
        self.pipeline.withLock { $0.window(chunkSize: chunkSize, initial: initial, configuration: configuration) }
    }
}
