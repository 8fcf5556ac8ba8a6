import NIOCore
import Synchronization

/// A peer this peer knows of, as discovery last heard it.
public struct KnownPeer: Sendable, Equatable {
    /// Its id.
    public var id: PeerID
    /// Where it serves transfers: its address and transfer port.
    public var transferAddress: SocketAddress
    /// Where its discovery datagrams come from; unicast announcements go there.
    public var discoveryAddress: SocketAddress
    /// When it was last heard from.
    public var lastSeen: NIODeadline
    /// When it is dropped unless heard from again: three of its announce intervals on.
    public var expires: NIODeadline
    /// Whether it only observes (`p2p peers`, `p2p ls`) and serves nothing.
    public var isObserver: Bool
    /// Its device name, as its last announcement gave it.
    public var name: PeerName? = nil

    /// The address as `a.b.c.d:port`, for tables and logs.
    public var transferAddressDescription: String {
        "\(self.transferAddress.ipAddress ?? "?"):\(self.transferAddress.port ?? 0)"
    }
}

/// What changed in the table.
public enum PeerEvent: Sendable, Equatable {
    /// A peer was heard from for the first time.
    case joined(KnownPeer)
    /// A peer said `stop`.
    case left(KnownPeer)
    /// A peer was silent for three of its intervals.
    case expired(KnownPeer)
}

/// The peers discovery knows of, safe to read from any task.
///
/// What gets in, what expires and which `stop` counts is decided by a `PeerRoster` value
/// held under the table's lock; the table adds the event stream for subscribers.
public final class PeerTable: Sendable {
    /// How many announce intervals of silence drop a peer.
    public static let silentIntervalsBeforeExpiry: Int64 = 3

    private struct State {
        var roster: PeerRoster
        var observers: [UInt64: AsyncStream<PeerEvent>.Continuation] = [:]
        var nextObserver: UInt64 = 0
    }

    private let state: Mutex<State>

    /// An empty table.
    /// - Parameter limits: the bounds it keeps.
    public init(limits: PeerRoster.Limits = PeerRoster.Limits()) {
        self.state = Mutex(State(roster: PeerRoster(limits: limits)))
    }

    /// The peers known now, observers included, ordered by id.
    public func all() -> [KnownPeer] {
        self.state.withLock { Array($0.roster.peers.values) }.sorted { $0.id < $1.id }
    }

    /// How many peers are known now, observers included.
    public var count: Int { self.state.withLock { $0.roster.peers.count } }

    /// The peers that serve transfers, ordered by id.
    public func servingPeers() -> [KnownPeer] {
        self.all().filter { !$0.isObserver }
    }

    /// The peer with this id, if known.
    public func peer(_ id: PeerID) -> KnownPeer? {
        self.state.withLock { $0.roster.peers[id] }
    }

    /// A stream of changes from now on. It ends when the caller stops iterating.
    public func events() -> AsyncStream<PeerEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: PeerEvent.self, bufferingPolicy: .bufferingNewest(1024))
        let key = self.state.withLock { state in
            let key = state.nextObserver
            state.nextObserver += 1
            state.observers[key] = continuation
            return key
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.observers.removeValue(forKey: key) }
        }
        return stream
    }

    /// Records an announcement heard from a peer.
    /// - Parameters:
    ///   - announcement: what it said.
    ///   - source: where the datagram came from.
    ///   - counter: the datagram's authenticated counter, in a keyed swarm.
    ///   - now: the time it arrived.
    /// - Returns: what it did to the table.
    @discardableResult
    public func admit(
        _ announcement: Announcement,
        from source: SocketAddress,
        counter: UInt64? = nil,
        now: NIODeadline = .now()
    ) -> PeerRoster.Outcome {
        let outcome = self.state.withLock {
            $0.roster.record(announcement, from: source, counter: counter, now: now)
        }
        switch outcome {
        case .joined(let peer): self.publish(.joined(peer))
        case .left(let peer): self.publish(.left(peer))
        case .refreshed, .refused: break
        }
        return outcome
    }

    /// Records an announcement heard from a peer.
    /// - Parameters:
    ///   - announcement: what it said.
    ///   - source: where the datagram came from.
    ///   - now: the time it arrived.
    /// - Returns: the event it caused, if the peer is new or left.
    @discardableResult
    public func record(
        _ announcement: Announcement,
        from source: SocketAddress,
        now: NIODeadline = .now()
    ) -> PeerEvent? {
        switch self.admit(announcement, from: source, now: now) {
        case .joined(let peer): .joined(peer)
        case .left(let peer): .left(peer)
        case .refreshed, .refused: nil
        }
    }

    /// Drops every peer whose expiry time has passed.
    /// - Parameters:
    ///   - now: the time now.
    ///   - lastMissed: when discovery last dropped a datagram unread, if ever.
    /// - Returns: the peers dropped.
    @discardableResult
    public func expire(now: NIODeadline = .now(), missedSince lastMissed: NIODeadline? = nil) -> [KnownPeer] {
        let expired = self.state.withLock { $0.roster.expire(now: now, missedSince: lastMissed) }
        for peer in expired { self.publish(.expired(peer)) }
        return expired
    }

    /// Marks a transfer connection with a peer as open: the peer is not expired until
    /// `release` (SPEC §12: a busy peer's announcements are the first a full link drops).
    /// - Parameter id: the peer.
    public func hold(_ id: PeerID) {
        self.state.withLock { $0.roster.hold(id) }
    }

    /// Marks a transfer connection with a peer as closed; the peer lives three of its
    /// intervals from now unless heard again.
    /// - Parameters:
    ///   - id: the peer.
    ///   - now: the time now.
    public func release(_ id: PeerID, now: NIODeadline = .now()) {
        self.state.withLock { $0.roster.release(id, now: now) }
    }

    /// Whether a peer in the table sends its datagrams from `address`.
    public func knows(discoveryAddress address: SocketAddress) -> Bool {
        self.state.withLock { $0.roster.knows(discoveryAddress: address) }
    }

    /// Forgets a peer, for instance one that served corrupt data too often.
    /// - Parameter id: the peer.
    public func remove(_ id: PeerID) {
        self.state.withLock { _ = $0.roster.remove(id) }
    }

    private func publish(_ event: PeerEvent) {
        let observers = self.state.withLock { Array($0.observers.values) }
        for observer in observers { observer.yield(event) }
    }
}
