import DequeModule

/// One host's uplink: the messages waiting for each destination (one TCP connection's
/// worth of ordering), sent in turn a unit at a time, so that concurrent connections share
/// the link fairly, as TCP flows behind one rate limiter do.
struct Uplink<Message> {
    struct Outgoing {
        var message: Message
        var size: Int
        var remaining: Int
    }

    /// Bytes a second on the wire, after framing overhead.
    let bytesPerSecond: Double
    /// The most bytes sent before the next destination's turn.
    let unit: Int
    private var queues: [Int: Deque<Outgoing>] = [:]
    private var turns = Deque<Int>()
    /// Whether a unit is on the wire.
    private(set) var isBusy = false
    /// The destination of the unit on the wire and its length.
    private var current: (destination: Int, length: Int)? = nil
    /// Bytes sent so far.
    private(set) var bytesSent: Int64 = 0

    init(bytesPerSecond: Double, unit: Int) {
        self.bytesPerSecond = bytesPerSecond
        self.unit = unit
    }

    /// Queues a message.
    mutating func enqueue(_ message: Message, size: Int, to destination: Int) {
        let outgoing = Outgoing(message: message, size: max(1, size), remaining: max(1, size))
        if self.queues[destination, default: []].isEmpty { self.turns.append(destination) }
        self.queues[destination, default: []].append(outgoing)
    }

    /// Puts the next unit on the wire.
    /// - Returns: how long it takes on the link, its bytes, and the message it starts, if it
    ///   is the first unit of one; `nil` if nothing waits.
    mutating func startNext() -> (seconds: Double, length: Int, starting: Message?)? {
        guard !self.isBusy, let destination = self.turns.popFirst(), let head = self.queues[destination]?.first else {
            return nil
        }
        let length = min(self.unit, head.remaining)
        self.current = (destination, length)
        self.isBusy = true
        return (Double(length) / self.bytesPerSecond, length, head.remaining == head.size ? head.message : nil)
    }

    /// The unit on the wire has gone.
    /// - Returns: the message it completed, and where to, if it did.
    mutating func finishUnit() -> (message: Message, size: Int, destination: Int)? {
        guard let (destination, length) = self.current else { return nil }
        self.current = nil
        self.isBusy = false
        self.bytesSent += Int64(length)
        var completed: (Message, Int, Int)? = nil
        self.queues[destination]![0].remaining -= length
        if self.queues[destination]![0].remaining <= 0 {
            let done = self.queues[destination]!.removeFirst()
            completed = (done.message, done.size, destination)
        }
        if self.queues[destination]!.isEmpty {
            self.queues[destination] = nil
        } else {
            self.turns.append(destination)
        }
        return completed
    }

    /// Drops everything queued for `destination` (its connection closed).
    mutating func drop(to destination: Int) {
        guard var queue = self.queues[destination] else { return }
        // A unit on the wire finishes; the rest goes.
        if let current = self.current, current.destination == destination, let head = queue.first {
            queue = [head]
            self.queues[destination] = queue
        } else {
            self.queues[destination] = nil
            self.turns.removeAll { $0 == destination }
        }
    }
}
