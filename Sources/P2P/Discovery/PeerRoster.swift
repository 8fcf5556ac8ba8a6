import NIOCore

/// Who is in the peer table, and who may get in: the decisions behind `PeerTable`, as a
/// value with time passed in.
///
/// Anyone on the LAN can send announcements, and without a network key they can name any
/// id and any source address, so every decision here assumes the sender may lie:
/// - The table is bounded in total and per source address. A new id is refused when either
///   bound is reached; a peer already in the table is never evicted to make room, so a
///   flood of forged ids cannot push honest peers out, only keep newcomers out until the
///   forged entries expire.
/// - A peer's claimed announce interval sets when it expires, but only up to
///   `Limits.maximumAnnounceInterval`, so a forged entry cannot live for weeks.
/// - A `stop` is taken only from the discovery address recorded for that id, so a
///   bystander cannot evict an honest peer by naming its id.
/// - With a network key, each datagram carries a counter; one whose counter is not above
///   the last accepted from that id is a replay and is refused. The last counter of a peer
///   that left is kept for `Limits.replayMemory`, so its recorded `alive` cannot bring it
///   back while the datagram's timestamp would still pass.
///
/// Announcements are not the only sign of life: a peer that holds a transfer connection
/// with this one (`hold`) is never expired, one that sent anything on such a connection
/// (`noteActivity`) lives on for its lifetime from then, and none is expired while this
/// peer drops datagrams unread (`expire(now:missedSince:)`). A peer busy moving data
/// is the one whose datagrams a full uplink drops first; expiring it would stop lookups
/// from finding it and make it join again and again.
public struct PeerRoster: Sendable {
    /// The bounds the roster keeps.
    public struct Limits: Sendable, Equatable {
        /// Peers in the table at most, observers included.
        public var maximumPeers: Int
        /// Peers from one IPv4 source address at most.
        public var maximumPeersPerAddress: Int
        /// The longest announce interval a peer may claim; longer claims are clamped.
        public var maximumAnnounceInterval: TimeAmount
        /// How long the last counter of a departed keyed peer is remembered.
        public var replayMemory: TimeAmount

        /// The default total: far more than a LAN swarm, small enough that a full table
        /// costs little memory and a distribution round little work.
        public static let defaultMaximumPeers = 1024
        /// The default per address: room for many peers on one host (tests, containers
        /// behind one address), few enough that one sender cannot fill the table.
        public static let defaultMaximumPeersPerAddress = 64
        /// The default longest interval: 60 s, so a silent entry is gone within 3 minutes.
        public static let defaultMaximumAnnounceInterval = TimeAmount.seconds(60)

        /// Creates limits.
        /// - Parameters:
        ///   - maximumPeers: peers at most.
        ///   - maximumPeersPerAddress: peers from one source address at most.
        ///   - maximumAnnounceInterval: the longest interval a peer may claim.
        ///   - replayMemory: how long a departed peer's last counter is kept.
        public init(
            maximumPeers: Int = Limits.defaultMaximumPeers,
            maximumPeersPerAddress: Int = Limits.defaultMaximumPeersPerAddress,
            maximumAnnounceInterval: TimeAmount = Limits.defaultMaximumAnnounceInterval,
            replayMemory: TimeAmount = .milliseconds(2 * AnnouncementSeal.defaultWindowMilliseconds)
        ) {
            self.maximumPeers = maximumPeers
            self.maximumPeersPerAddress = maximumPeersPerAddress
            self.maximumAnnounceInterval = maximumAnnounceInterval
            self.replayMemory = replayMemory
        }
    }

    /// What an announcement did to the roster.
    public enum Outcome: Sendable, Equatable {
        /// A new peer was added.
        case joined(KnownPeer)
        /// A known peer was heard again; its entry is refreshed.
        case refreshed(KnownPeer)
        /// A known peer said `stop` from its own address and was removed.
        case left(KnownPeer)
        /// Nothing changed, for the reason given.
        case refused(Refusal)
    }

    /// Why an announcement changed nothing.
    public enum Refusal: Sendable, Equatable, CustomStringConvertible {
        /// A new id, and the table holds `maximumPeers` already.
        case tableFull
        /// A new id, and its source address has `maximumPeersPerAddress` ids already.
        case addressFull
        /// A `stop` for a known id from another address than the one recorded for it.
        case stopFromElsewhere
        /// A `stop` for an id not in the table.
        case unknownStop
        /// A keyed datagram whose counter is not above the last one accepted from its id.
        case replayed

        public var description: String {
            switch self {
            case .tableFull: "the peer table is full"
            case .addressFull: "the sender's address has too many peers"
            case .stopFromElsewhere: "stop from another address than the peer's"
            case .unknownStop: "stop from an unknown peer"
            case .replayed: "replayed datagram"
            }
        }
    }

    /// The bounds in force.
    public let limits: Limits
    /// The peers, by id.
    public private(set) var peers: [PeerID: KnownPeer] = [:]
    /// How many peers each IPv4 source address has in `peers`.
    private var peersPerAddress: [UInt32: Int] = [:]
    /// The last counter accepted from each keyed peer in the table.
    private var counters: [PeerID: UInt64] = [:]
    /// The last counter of keyed peers that left, and until when it is kept.
    private var departedCounters: [PeerID: (counter: UInt64, until: NIODeadline)] = [:]
    /// How long each peer in the table lives unheard: three of its (clamped) intervals.
    private var lifetimes: [PeerID: TimeAmount] = [:]
    /// Transfer connections open with each peer, by id; a peer with one is not expired.
    /// Kept apart from `peers`, because a connection outlives a `stop` or an expiry, and a
    /// peer that comes back is held by it at once.
    private var holds: [PeerID: Int] = [:]
    /// Which peer sends from each discovery address, so that whether a datagram's source is
    /// a known peer's is told without a scan.
    private var byDiscoveryAddress: [SocketAddress: PeerID] = [:]

    /// An empty roster.
    /// - Parameter limits: the bounds to keep.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Takes in an announcement.
    /// - Parameters:
    ///   - announcement: what was said.
    ///   - source: where the datagram came from.
    ///   - counter: the datagram's authenticated counter, for a keyed swarm.
    ///   - now: when it arrived.
    /// - Returns: what it did.
    public mutating func record(
        _ announcement: Announcement,
        from source: SocketAddress,
        counter: UInt64? = nil,
        now: NIODeadline
    ) -> Outcome {
        let id = announcement.peerID
        if let counter {
            let last = self.counters[id] ?? self.departedCounters[id]?.counter
            if let last, counter <= last { return .refused(.replayed) }
        }
        switch announcement.kind {
        case .stop:
            guard let known = self.peers[id] else { return .refused(.unknownStop) }
            guard known.discoveryAddress == source else { return .refused(.stopFromElsewhere) }
            self.remove(id)
            if let counter, self.departedCounters.count < 2 * self.limits.maximumPeers {
                self.departedCounters[id] = (counter, now + self.limits.replayMemory)
            }
            return .left(known)
        case .start, .alive:
            let previous = self.peers[id]
            let address = Self.addressKey(source)
            // A known peer that moved counts against its new address from now on.
            let previousAddress = previous.map { Self.addressKey($0.discoveryAddress) }
            if previous == nil && self.peers.count >= self.limits.maximumPeers { return .refused(.tableFull) }
            if previousAddress != address {
                guard self.peersPerAddress[address, default: 0] < self.limits.maximumPeersPerAddress else {
                    return .refused(.addressFull)
                }
                if let previous { self.uncount(previous.discoveryAddress) }
                self.peersPerAddress[address, default: 0] += 1
            }
            var transferAddress = source
            transferAddress.port = Int(announcement.transferPort)
            let peer = KnownPeer(
                id: id,
                transferAddress: transferAddress,
                discoveryAddress: source,
                lastSeen: now,
                expires: now + self.lifetime(announcement),
                isObserver: announcement.transferPort == 0,
                name: announcement.name
            )
            if let previous, previous.discoveryAddress != source,
                self.byDiscoveryAddress[previous.discoveryAddress] == id
            {
                self.byDiscoveryAddress[previous.discoveryAddress] = nil
            }
            self.byDiscoveryAddress[source] = id
            self.peers[id] = peer
            self.lifetimes[id] = self.lifetime(announcement)
            if let counter {
                self.counters[id] = counter
                self.departedCounters[id] = nil
            }
            return previous == nil ? .joined(peer) : .refreshed(peer)
        }
    }

    /// How long a peer lives without being heard again: three of its intervals, the
    /// interval clamped to `Limits.maximumAnnounceInterval`.
    public func lifetime(_ announcement: Announcement) -> TimeAmount {
        let claimed = TimeAmount.milliseconds(Int64(announcement.announceIntervalMilliseconds))
        return min(claimed, self.limits.maximumAnnounceInterval) * PeerTable.silentIntervalsBeforeExpiry
    }

    /// Marks a transfer connection with a peer as open: until it is released, the peer is
    /// alive whatever its announcements do.
    /// - Parameter id: the peer.
    public mutating func hold(_ id: PeerID) {
        self.holds[id, default: 0] += 1
    }

    /// Marks a transfer connection with a peer as closed. The peer was alive until now, so
    /// it lives a lifetime from now unless heard again.
    /// - Parameters:
    ///   - id: the peer.
    ///   - now: the time now.
    public mutating func release(_ id: PeerID, now: NIODeadline) {
        guard let count = self.holds[id] else { return }
        self.holds[id] = count > 1 ? count - 1 : nil
        self.noteActivity(id, now: now)
    }

    /// Whether a transfer connection with the peer is open.
    public func isHeld(_ id: PeerID) -> Bool {
        self.holds[id] != nil
    }

    /// Records that a peer in the table sent something other than an announcement (an
    /// answer on a transfer connection): it lives a lifetime from now.
    /// - Parameters:
    ///   - id: the peer.
    ///   - now: the time now.
    public mutating func noteActivity(_ id: PeerID, now: NIODeadline) {
        guard var peer = self.peers[id], let lifetime = self.lifetimes[id] else { return }
        peer.lastSeen = max(peer.lastSeen, now)
        peer.expires = max(peer.expires, now + lifetime)
        self.peers[id] = peer
    }

    /// Drops every peer whose expiry time has passed and that holds no transfer connection
    /// with this one, and forgets departed counters whose time is up.
    ///
    /// A peer is not dropped while this one dropped datagrams unread within that peer's
    /// lifetime (`lastMissed`): under a flood its announcements may be among them, and
    /// its silence says nothing. Forged entries then stay too, but the table is bounded and
    /// they keep only newcomers out, as they do anyway.
    /// - Parameters:
    ///   - now: the time now.
    ///   - lastMissed: when a datagram was last dropped unread, if ever.
    /// - Returns: the peers dropped.
    public mutating func expire(now: NIODeadline, missedSince lastMissed: NIODeadline? = nil) -> [KnownPeer] {
        let gone = self.peers.values.filter { peer in
            guard peer.expires <= now, self.holds[peer.id] == nil else { return false }
            if let lastMissed, let lifetime = self.lifetimes[peer.id], lastMissed + lifetime > now { return false }
            return true
        }
        for peer in gone {
            if let counter = self.counters[peer.id], self.departedCounters.count < 2 * self.limits.maximumPeers {
                self.departedCounters[peer.id] = (counter, now + self.limits.replayMemory)
            }
            self.remove(peer.id)
        }
        self.departedCounters = self.departedCounters.filter { $0.value.until > now }
        return gone
    }

    /// Forgets a peer.
    /// - Parameter id: the peer.
    /// - Returns: the entry removed, if it was there.
    @discardableResult
    public mutating func remove(_ id: PeerID) -> KnownPeer? {
        guard let gone = self.peers.removeValue(forKey: id) else { return nil }
        self.uncount(gone.discoveryAddress)
        if self.byDiscoveryAddress[gone.discoveryAddress] == id { self.byDiscoveryAddress[gone.discoveryAddress] = nil }
        self.counters[id] = nil
        self.lifetimes[id] = nil
        return gone
    }

    /// Whether a peer in the table sends its datagrams from `address`.
    public func knows(discoveryAddress address: SocketAddress) -> Bool {
        self.byDiscoveryAddress[address] != nil
    }

    /// How many peers come from `address`'s IPv4 address.
    public func peerCount(from address: SocketAddress) -> Int {
        self.peersPerAddress[Self.addressKey(address), default: 0]
    }

    private mutating func uncount(_ source: SocketAddress) {
        let key = Self.addressKey(source)
        let remaining = self.peersPerAddress[key, default: 0] - 1
        self.peersPerAddress[key] = remaining > 0 ? remaining : nil
    }

    /// The IPv4 address a per-address bound counts by; other families share one count.
    private static func addressKey(_ address: SocketAddress) -> UInt32 {
        NetworkScope.ipv4(address) ?? 0
    }
}
