import Synchronization

/// Paces bytes to a rate shared by every task that uses it: each caller reserves its bytes
/// on one timeline and sleeps until its turn. Bursts up to a quarter second of the rate.
public final class RateLimiter: Sendable {
    /// Bytes per second; zero or less means no limit.
    public let bytesPerSecond: Int64
    private let nextFree = Mutex<ContinuousClock.Instant?>(nil)

    /// A limiter.
    /// - Parameter bytesPerSecond: the rate; zero or less for none.
    public init(bytesPerSecond: Int64) {
        self.bytesPerSecond = bytesPerSecond
    }

    /// Waits until `bytes` may be sent.
    /// - Parameter bytes: how many are about to be sent.
    /// - Throws: `CancellationError` if the task is cancelled while waiting.
    public func acquire(_ bytes: Int) async throws {
        guard self.bytesPerSecond > 0 else { return }
        let cost = Duration.nanoseconds(Int64(Double(bytes) / Double(self.bytesPerSecond) * 1e9))
        let burst = Duration.milliseconds(250)
        let start: ContinuousClock.Instant = self.nextFree.withLock { next in
            let now = ContinuousClock.now
            let begin = max(next ?? now, now - burst)
            next = begin + cost
            return begin
        }
        let now = ContinuousClock.now
        if start > now { try await Task.sleep(until: start, clock: .continuous) }
    }
}
