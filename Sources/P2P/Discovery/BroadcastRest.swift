import NIOCore

/// Which broadcast addresses announcements go to now, as a value with the time passed in.
///
/// Where the network refuses broadcast (a firewall's reject, a route that blackholes or
/// prohibits the address), the send fails, and NIO closes the socket it failed on: with it
/// go the rest of the round's datagrams (the unicasts to `--peer` addresses, the very
/// peers that are named because broadcast does not work) and the answers on their way
/// back. So a broadcast address whose send failed rests: 5 s, then twice as long after
/// each further failure, up to a minute. A send that works ends the rest, so a refusal
/// that was passing (an interface still coming up) costs one round.
package struct BroadcastRest: Sendable {
    /// The first rest after a failure.
    package static let firstRest: Duration = .seconds(5)
    /// The longest rest.
    package static let longestRest: Duration = .seconds(60)

    private struct Resting: Sendable {
        var until: ContinuousClock.Instant
        var failures: Int
    }

    private var resting: [SocketAddress: Resting] = [:]

    package init() {}

    /// Whether to broadcast to `address` now.
    package func allows(_ address: SocketAddress, now: ContinuousClock.Instant) -> Bool {
        guard let rest = self.resting[address] else { return true }
        return now >= rest.until
    }

    /// A send to `address` failed: it rests, longer the more often it failed in a row.
    /// - Returns: how long it rests.
    @discardableResult
    package mutating func failed(_ address: SocketAddress, now: ContinuousClock.Instant) -> Duration {
        let failures = (self.resting[address]?.failures ?? 0) + 1
        let rest = min(Self.longestRest, Self.firstRest * (1 << min(failures - 1, 4)))
        self.resting[address] = Resting(until: now + rest, failures: failures)
        return rest
    }

    /// A send to `address` went out: it no longer rests.
    package mutating func succeeded(_ address: SocketAddress) {
        self.resting[address] = nil
    }
}
