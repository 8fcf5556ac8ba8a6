import NIOCore

/// How many `start`s get a unicast answer: token buckets, one for all senders and one per
/// source IPv4 address, with time passed in.
///
/// An answer goes to the datagram's source, which an outsider can forge; without a bound,
/// each forged `start` would make this peer send a datagram to whichever host it names.
/// The buckets hold enough for a crowd of honest newcomers on one host (each sends
/// `start` twice) and refill quickly, so a flood gets a trickle and honest peers still
/// learn the swarm from the next `alive` if an answer is refused.
public struct StartReplyLimiter: Sendable {
    /// The buckets' sizes and refill rates.
    public struct Limits: Sendable, Equatable {
        /// Answers that may go out at once, to everyone.
        public var totalBurst: Double
        /// Answers per second to everyone, in the long run.
        public var totalPerSecond: Double
        /// Answers that may go to one address at once.
        public var perSourceBurst: Double
        /// Answers per second to one address, in the long run.
        public var perSourcePerSecond: Double
        /// Source addresses tracked at most; when full, those whose bucket is full again
        /// are forgotten, and if none is, a new address gets no answer.
        public var maximumSources: Int

        /// Creates limits; the defaults allow 64 answers at once and 32 a second in all,
        /// 16 at once and 8 a second to one address.
        public init(
            totalBurst: Double = 64,
            totalPerSecond: Double = 32,
            perSourceBurst: Double = 16,
            perSourcePerSecond: Double = 8,
            maximumSources: Int = 1024
        ) {
            self.totalBurst = totalBurst
            self.totalPerSecond = totalPerSecond
            self.perSourceBurst = perSourceBurst
            self.perSourcePerSecond = perSourcePerSecond
            self.maximumSources = maximumSources
        }
    }

    /// One token bucket.
    private struct Bucket: Sendable {
        var tokens: Double
        var updated: NIODeadline

        /// Adds what accrued since the last update, up to `burst`.
        mutating func refill(now: NIODeadline, burst: Double, perSecond: Double) {
            let elapsed = Double(max(0, (now - self.updated).nanoseconds)) / 1e9
            self.tokens = min(burst, self.tokens + elapsed * perSecond)
            self.updated = max(self.updated, now)
        }
    }

    /// The limits in force.
    public let limits: Limits
    private var total: Bucket?
    private var sources: [UInt32: Bucket] = [:]

    /// A limiter with full buckets.
    /// - Parameter limits: the sizes and rates.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// How many source addresses are tracked now.
    public var trackedSources: Int { self.sources.count }

    /// Takes a token for an answer to `source` if both buckets have one.
    /// - Parameters:
    ///   - source: the sender of the `start`, IPv4 host byte order.
    ///   - now: the time now.
    /// - Returns: whether to answer.
    public mutating func allow(_ source: UInt32, now: NIODeadline) -> Bool {
        var total = self.total ?? Bucket(tokens: self.limits.totalBurst, updated: now)
        total.refill(now: now, burst: self.limits.totalBurst, perSecond: self.limits.totalPerSecond)
        self.total = total
        var bucket: Bucket
        if let known = self.sources[source] {
            bucket = known
            bucket.refill(now: now, burst: self.limits.perSourceBurst, perSecond: self.limits.perSourcePerSecond)
        } else {
            guard self.makeRoom(now: now) else { return false }
            bucket = Bucket(tokens: self.limits.perSourceBurst, updated: now)
        }
        guard total.tokens >= 1, bucket.tokens >= 1 else {
            self.sources[source] = bucket
            return false
        }
        self.total?.tokens -= 1
        bucket.tokens -= 1
        self.sources[source] = bucket
        return true
    }

    /// Forgets sources whose buckets have refilled (they are as if new) when the map is
    /// full. Returns whether a new source fits.
    private mutating func makeRoom(now: NIODeadline) -> Bool {
        guard self.sources.count >= self.limits.maximumSources else { return true }
        let limits = self.limits
        self.sources = self.sources.filter { _, bucket in
            var bucket = bucket
            bucket.refill(now: now, burst: limits.perSourceBurst, perSecond: limits.perSourcePerSecond)
            return bucket.tokens < limits.perSourceBurst
        }
        return self.sources.count < self.limits.maximumSources
    }
}
