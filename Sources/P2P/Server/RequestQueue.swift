import DequeModule

/// The decisions of `RequestGate`, as a value: which request goes up to the responder and
/// when, and whether the socket may be read. Each event is a `mutating` method that says
/// what to do; the gate does it on the event loop.
///
/// A request goes up only when the responder asked for one and the answers written so far
/// but not yet sent stay under `maximumUnsentBytes`; the socket is read only while fewer
/// than `maximumQueued` requests, and under `maximumQueuedBytes`, wait here. When the
/// connection ends, everything waiting goes up at once, so that the responder sees every
/// request that arrived before the end.
struct RequestQueue<Request> {
    /// Requests waiting at which the socket is not read.
    let maximumQueued: Int
    /// Bytes of requests waiting at which the socket is not read.
    let maximumQueuedBytes: Int
    /// Bytes of answers written and not yet sent at which no request goes up.
    let maximumUnsentBytes: Int

    private var waiting = Deque<(request: Request, bytes: Int)>()
    /// Bytes of the requests waiting.
    private(set) var queuedBytes = 0
    /// Bytes of answers written whose write has not completed.
    private(set) var unsentBytes = 0
    /// The responder asked for a request and has not had one.
    private(set) var isWanted = false

    /// A queue with nothing waiting.
    init(maximumQueued: Int, maximumQueuedBytes: Int, maximumUnsentBytes: Int) {
        self.maximumQueued = max(1, maximumQueued)
        self.maximumQueuedBytes = max(1, maximumQueuedBytes)
        self.maximumUnsentBytes = max(1, maximumUnsentBytes)
    }

    /// Requests waiting.
    var count: Int { self.waiting.count }

    /// Whether the socket may be read: there is room for more requests.
    var hasRoom: Bool {
        self.waiting.count < self.maximumQueued && self.queuedBytes < self.maximumQueuedBytes
    }

    /// A request arrived from the socket.
    /// - Returns: the request to hand to the responder now, if any.
    mutating func arrived(_ request: Request, bytes: Int) -> Request? {
        self.waiting.append((request, bytes))
        self.queuedBytes += bytes
        return self.next()
    }

    /// The responder asks for a request.
    /// - Returns: the request to hand it now, if any.
    mutating func wanted() -> Request? {
        self.isWanted = true
        return self.next()
    }

    /// An answer of `bytes` was written towards the socket.
    mutating func answerWritten(bytes: Int) {
        self.unsentBytes += bytes
    }

    /// An answer's write completed (sent, or failed).
    /// - Returns: the request to hand to the responder now, if any.
    mutating func answerSent(bytes: Int) -> Request? {
        self.unsentBytes -= bytes
        return self.next()
    }

    /// The connection ends (closed, input closed or failed).
    /// - Returns: every request waiting, oldest first, to hand on at once.
    mutating func ending() -> [Request] {
        let all = self.waiting.map(\.request)
        self.waiting.removeAll()
        self.queuedBytes = 0
        return all
    }

    private mutating func next() -> Request? {
        guard self.isWanted, self.unsentBytes < self.maximumUnsentBytes, let first = self.waiting.popFirst() else {
            return nil
        }
        self.queuedBytes -= first.bytes
        self.isWanted = false
        return first.request
    }
}
