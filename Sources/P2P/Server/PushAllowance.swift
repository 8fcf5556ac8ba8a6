import Logging
import NIOCore
import Synchronization

/// How many bytes of pushes this peer takes from one address: a token bucket per IP
/// address (not per connection, not per port), shared by all of that address's
/// connections.
///
/// Why: every pushed chunk costs a SHA-256 over its bytes and a disk write before it is
/// known to be wanted, and the cache limit bounds only what is kept, not that work. A peer
/// that pushes without pause could keep this one hashing and writing; with the allowance
/// it gets `bytesPerInterval` at once and as much again every `interval`, and what is over
/// is dropped unread. Keyed by address so that opening more connections does not buy more.
///
/// The default, 64 MiB per 10 s, takes an honest distributor's rounds in full: a round at
/// the default 8 MiB/s lasts 10 s, 80 MiB, which a full bucket (64 MiB) and what it
/// refills meanwhile (6.4 MiB/s) cover, and the 10 s between rounds fills it again.
public final class PushAllowance: Sendable {
    /// Bytes taken from one address at once, and refilled over each `interval`; zero or less
    /// takes no pushes at all.
    public let bytesPerInterval: Int64
    /// The time over which a spent allowance refills completely.
    public let interval: Duration

    /// The default allowance: 64 MiB.
    public static let defaultBytesPerInterval: Int64 = 64 << 20
    /// The default interval: 10 s.
    public static let defaultInterval: Duration = .seconds(10)
    /// Pushes refused on one connection before it is closed: a few are what a sender had
    /// in flight when the allowance ran out; more is a sender that does not stop.
    public static let refusalsBeforeClosing = 16
    /// Addresses remembered at most. Addresses whose allowance is full again are forgotten
    /// first; past this, pushes from an address not yet remembered are refused, so no
    /// number of senders makes the table grow without bound.
    static let maximumAddresses = 4096

    private struct Bucket {
        var available: Double
        var updated: ContinuousClock.Instant
    }

    private let buckets = Mutex<[String: Bucket]>([:])

    /// Creates an allowance.
    /// - Parameters:
    ///   - bytesPerInterval: bytes taken from one address at once and per interval; zero or
    ///     less for none.
    ///   - interval: the time over which the allowance refills (at least a millisecond).
    public init(
        bytesPerInterval: Int64 = PushAllowance.defaultBytesPerInterval,
        interval: Duration = PushAllowance.defaultInterval
    ) {
        self.bytesPerInterval = bytesPerInterval
        self.interval = max(interval, .milliseconds(1))
    }

    /// Takes `bytes` of a push from `remote`'s allowance if they fit.
    /// - Parameters:
    ///   - bytes: the push's size (the frame's payload).
    ///   - remote: the sender; only its IP address counts.
    /// - Returns: whether to accept the push; if not, nothing was taken and the push should
    ///   be dropped unread.
    public func admit(bytes: Int, from remote: SocketAddress?) -> Bool {
        self.admit(bytes: bytes, from: remote?.ipAddress ?? "?", at: .now)
    }

    /// `admit(bytes:from:)` at a given time, for tests.
    func admit(bytes: Int, from address: String, at now: ContinuousClock.Instant) -> Bool {
        let capacity = Double(self.bytesPerInterval)
        guard capacity > 0 else { return false }
        let perSecond = capacity / self.interval.seconds
        return self.buckets.withLock { buckets in
            var bucket: Bucket
            if let known = buckets[address] {
                bucket = known
                let elapsed = (now - bucket.updated).seconds
                if elapsed > 0 { bucket.available = min(capacity, bucket.available + elapsed * perSecond) }
            } else {
                if buckets.count >= Self.maximumAddresses {
                    buckets = buckets.filter { now - $0.value.updated < self.interval }
                    guard buckets.count < Self.maximumAddresses else { return false }
                }
                bucket = Bucket(available: capacity, updated: now)
            }
            bucket.updated = max(bucket.updated, now)
            let admitted = Double(bytes) <= bucket.available
            if admitted { bucket.available -= Double(bytes) }
            buckets[address] = bucket
            return admitted
        }
    }
}

extension PushAllowance {
    /// One connection's pushes against its address's allowance: counts what is refused,
    /// logs the first refusal, and ends the connection when the sender does not stop.
    struct Gate {
        let allowance: PushAllowance
        let remote: SocketAddress?
        let statistics: TransferStatistics
        let logger: Logger
        private(set) var refused = 0

        init(_ allowance: PushAllowance, remote: SocketAddress?, statistics: TransferStatistics, logger: Logger) {
            self.allowance = allowance
            self.remote = remote
            self.statistics = statistics
            self.logger = logger
        }

        /// Whether to handle a pushed chunk or manifest.
        /// - Parameter frame: the push as received.
        /// - Returns: `true` to handle it, `false` to drop it (counted in `pushesRefused`
        ///   if it is a chunk).
        /// - Throws: `P2PError` (`protocolViolation`) at the `refusalsBeforeClosing`th
        ///   refusal on this connection, to close it.
        mutating func admit(_ frame: Frame) throws(P2PError) -> Bool {
            if self.allowance.admit(bytes: frame.payload.readableBytes, from: self.remote) { return true }
            self.refused += 1
            if frame.type == .pushedChunk { self.statistics.recordPushRefused() }
            if self.refused == 1 {
                self.logger.info(
                    "refusing pushes over the sender's allowance",
                    metadata: [
                        "peer.address": "\(self.remote.map { "\($0)" } ?? "?")",
                        "allowance": "\(self.allowance.bytesPerInterval) bytes per \(self.allowance.interval)",
                    ]
                )
            }
            guard self.refused < PushAllowance.refusalsBeforeClosing else {
                throw P2PError(code: .protocolViolation, "went on pushing after \(self.refused) pushes were refused")
            }
            return false
        }
    }
}
