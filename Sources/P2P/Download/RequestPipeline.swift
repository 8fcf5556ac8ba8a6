import DequeModule

/// One download connection's requests, as a value: what is expected back, in order, and
/// how fast answers come (which sizes the window). Time is passed in; the connection's
/// two halves share it through `WorkerLink`.
package struct RequestPipeline {
    /// What an answer on the connection is to.
    package enum Expectation: Equatable {
        case inventory
        case chunk(Int)
        case work
    }

    /// The requests sent and not answered, oldest first: answers come in this order.
    package private(set) var expected = Deque<Expectation>()
    /// Whether an answer was awaited longer than the answer timeout.
    package private(set) var timedOut = false
    private var lastProgress: ContinuousClock.Instant
    // Delivery rate, over periods of at least `ratePeriod`.
    private var periodStart: ContinuousClock.Instant
    private var periodBytes = 0
    package private(set) var bytesPerSecond = 0.0

    /// The shortest period a delivery rate is measured over: shorter ones are mostly the
    /// burstiness of the socket.
    package static let ratePeriod: Duration = .milliseconds(100)

    /// A pipeline with nothing sent, at `now`.
    package init(now: ContinuousClock.Instant) {
        self.lastProgress = now
        self.periodStart = now
    }

    /// Records a request about to be sent.
    package mutating func expect(_ expectation: Expectation, now: ContinuousClock.Instant) {
        if self.expected.isEmpty { self.lastProgress = now }
        self.expected.append(expectation)
    }

    /// Whether a request of this kind is waiting for its answer.
    package func isExpecting(_ expectation: Expectation) -> Bool {
        self.expected.contains(expectation)
    }

    /// Whether the next answer must be to `expectation` (answers come in order).
    package func isAnswering(_ expectation: Expectation) -> Bool {
        self.expected.first == expectation
    }

    /// Requests for chunks or work that are unanswered (inventory requests do not count).
    package var requestsInFlight: Int {
        self.expected.count { $0 != .inventory }
    }

    /// The chunks asked for and not yet answered.
    package var chunksInFlight: [Int] {
        self.expected.compactMap { if case .chunk(let chunk) = $0 { chunk } else { nil } }
    }

    /// Something arrived.
    package mutating func madeProgress(now: ContinuousClock.Instant) {
        self.lastProgress = now
    }

    /// Whether an answer has been awaited for longer than `timeout`; marks the pipeline
    /// timed out when it has.
    package mutating func isStalled(after timeout: Duration, now: ContinuousClock.Instant) -> Bool {
        guard !self.expected.isEmpty, now - self.lastProgress > timeout else { return false }
        self.timedOut = true
        return true
    }

    /// An answer arrived: it must be to the oldest request.
    /// - Throws: `P2PError` (`protocolViolation`) if it answers something else.
    package mutating func answered(
        _ expectation: Expectation,
        bytes: Int,
        now: ContinuousClock.Instant
    ) throws(P2PError) {
        guard self.expected.first == expectation else {
            throw P2PError(code: .protocolViolation, "answered \(expectation) out of order")
        }
        self.expected.removeFirst()
        self.periodBytes += bytes
        let elapsed = now - self.periodStart
        if elapsed >= Self.ratePeriod {
            let instant = Double(self.periodBytes) / elapsed.seconds
            self.bytesPerSecond = self.bytesPerSecond == 0 ? instant : 0.5 * self.bytesPerSecond + 0.5 * instant
            self.periodBytes = 0
            self.periodStart = now
        }
    }

    /// A failure arrived: it answers the oldest request, which is returned.
    /// - Throws: `P2PError` (`protocolViolation`) if no request, or a chunk request for
    ///   another chunk, is waiting.
    package mutating func answeredWithFailure(chunk: Int) throws(P2PError) -> Expectation {
        guard let first = self.expected.first else {
            throw P2PError(code: .protocolViolation, "a failure answering nothing")
        }
        if case .chunk(let expected) = first, expected != chunk {
            throw P2PError(code: .protocolViolation, "a failure for chunk \(chunk) answering chunk \(expected)")
        }
        self.expected.removeFirst()
        return first
    }

    /// Requests to keep in flight: enough to cover what the peer delivers in
    /// `windowLatency`, and two more, so the link never runs dry; `initial` until the
    /// rate is known. Large windows only add latency: on a shared uplink, every request
    /// queued at the sender is time the others wait.
    package func window(chunkSize: Int, initial: Int, configuration: Downloader.Configuration) -> Int {
        guard self.bytesPerSecond > 0 else { return initial }
        let covering = Int(self.bytesPerSecond * configuration.windowLatency.seconds / Double(chunkSize)) + 2
        return min(max(covering, 2), configuration.maximumWindow)
    }
}
