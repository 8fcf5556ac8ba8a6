import NIOCore

/// Peer exchange (SPEC §12): how a peer given one `--peer` on another subnet learns the rest
/// of that swarm, and how it treats the addresses it is told: a value, with time passed in.
///
/// Offering: each announcement but `stop` carries up to `Announcement.maximumExchangedPeers`
/// discovery addresses of serving peers this one hears itself (`offer`): for a broadcast,
/// those off the network it goes to; for a unicast, those off the target's network; never
/// loopback addresses to another host. A swarm larger than one datagram is offered in
/// turns, a different slice each interval.
///
/// Taking: an address in another peer's list is a *candidate*, never a table entry. This
/// peer sends it a `start` (a probe), and it enters the table only if it answers from that
/// very address, like any peer. So a lying list costs a few small probes, never a false
/// entry in the table or a transfer connection. The bounds:
/// - lists count only from peers already in the table (heard themselves; in a keyed swarm,
///   only sealed datagrams are heard at all);
/// - an address is dropped unless it is IPv4 unicast (not 0/8, 127/8, multicast, 240/4),
///   not this host's own, not on a network in scope (the broadcast reaches those, and they
///   are heard directly), and not a peer known already;
/// - at most `Limits.maximumCandidates` candidates, `Limits.maximumPerVoucher` of them from
///   one lister; a candidate is probed at most once an interval and `Limits.probes` times,
///   then remembered as silent (`Limits.silenceMemory`) and not taken again meanwhile;
/// - at most `Limits.probesPerInterval` probes in all per interval.
///
/// Datagrams from a candidate are heard although it is outside the networks in scope: that
/// is what lets it answer in a swarm without a key. In such a swarm anyone on the LAN can
/// already forge any announcement; exchange adds that they can make this peer probe, and
/// if they also forge the answers, list and connect to, a host they name outside the
/// LAN, within the bounds above. A network key (`--secret`) closes that: lists and answers
/// then come only from members.
public struct PeerExchange: Sendable {
    /// The bounds.
    public struct Limits: Sendable, Equatable {
        /// Candidates held at most.
        public var maximumCandidates = 256
        /// Candidates one lister may have put in at most.
        public var maximumPerVoucher = 64
        /// Probes sent to a candidate before it is given up.
        public var probes = 3
        /// Probes sent in all per interval at most.
        public var probesPerInterval = 64
        /// Intervals a silent candidate is remembered, and not taken again.
        public var silenceMemory: Int64 = 30
        /// Silent candidates remembered at most.
        public var maximumSilent = 1024

        /// The defaults.
        public init() {}
    }

    /// An address being probed.
    private struct Candidate: Sendable {
        var address: SocketAddress
        var voucher: PeerID
        var probesSent: Int
        var nextProbe: NIODeadline
    }

    /// The bounds in force.
    public let limits: Limits
    /// The announce interval: probes go at most once an interval to each candidate.
    public let interval: TimeAmount
    private var candidates: [Announcement.PeerAddress: Candidate] = [:]
    private var perVoucher: [PeerID: Int] = [:]
    private var silent: [Announcement.PeerAddress: NIODeadline] = [:]
    private var windowStart: NIODeadline? = nil
    private var probesInWindow = 0

    /// An exchange with no candidates.
    /// - Parameters:
    ///   - interval: the announce interval.
    ///   - limits: the bounds.
    public init(interval: TimeAmount, limits: Limits = Limits()) {
        self.interval = interval
        self.limits = limits
    }

    /// How many candidates are held.
    public var candidateCount: Int { self.candidates.count }

    /// Whether datagrams from `source` are heard as a candidate's.
    public func isCandidate(_ source: SocketAddress) -> Bool {
        guard !self.candidates.isEmpty, let key = Announcement.PeerAddress(source) else { return false }
        return self.candidates[key] != nil
    }

    /// Takes the addresses a peer in the table listed.
    /// - Parameters:
    ///   - addresses: the list.
    ///   - voucher: the peer that listed them.
    ///   - now: the time now.
    ///   - scope: the networks in scope (their peers are heard directly).
    ///   - localAddresses: this host's own addresses.
    ///   - isKnown: whether a discovery address is a peer in the table already.
    /// - Returns: the new candidates to probe now.
    public mutating func learn(
        _ addresses: [Announcement.PeerAddress],
        from voucher: PeerID,
        now: NIODeadline,
        scope: NetworkScope,
        localAddresses: Set<UInt32>,
        isKnown: (SocketAddress) -> Bool
    ) -> [SocketAddress] {
        self.forgetSilence(now: now)
        var probes: [SocketAddress] = []
        for entry in addresses.prefix(Announcement.maximumExchangedPeers) {
            guard self.candidates[entry] == nil, self.silent[entry] == nil,
                Self.isProbeable(entry.address, scope: scope, localAddresses: localAddresses),
                let address = entry.socketAddress, !isKnown(address),
                self.candidates.count < self.limits.maximumCandidates,
                self.perVoucher[voucher, default: 0] < self.limits.maximumPerVoucher
            else { continue }
            self.perVoucher[voucher, default: 0] += 1
            var candidate = Candidate(address: address, voucher: voucher, probesSent: 0, nextProbe: now)
            if self.takeProbe(now: now) {
                candidate.probesSent = 1
                candidate.nextProbe = now + self.interval
                probes.append(address)
            }
            self.candidates[entry] = candidate
        }
        return probes
    }

    /// The candidates due for another probe; those probed `Limits.probes` times without an
    /// answer are given up and remembered as silent.
    /// - Parameter now: the time now.
    /// - Returns: where to send a probe.
    public mutating func due(now: NIODeadline) -> [SocketAddress] {
        self.forgetSilence(now: now)
        var probes: [SocketAddress] = []
        for (key, candidate) in self.candidates where candidate.nextProbe <= now {
            guard candidate.probesSent < self.limits.probes else {
                self.drop(key)
                if self.silent.count < self.limits.maximumSilent {
                    self.silent[key] = now + self.interval * self.limits.silenceMemory
                }
                continue
            }
            guard self.takeProbe(now: now) else { break }
            var probed = candidate
            probed.probesSent += 1
            probed.nextProbe = now + self.interval
            self.candidates[key] = probed
            probes.append(candidate.address)
        }
        return probes
    }

    /// A candidate was heard from: it is a peer like any other now.
    /// - Parameter source: where its datagram came from.
    public mutating func heard(from source: SocketAddress) {
        // Every datagram heard comes here: nothing to look up in the usual case.
        guard !self.candidates.isEmpty, let key = Announcement.PeerAddress(source) else { return }
        self.drop(key)
    }

    /// The addresses to put in an announcement.
    /// - Parameters:
    ///   - peers: the peers in the table.
    ///   - target: where the announcement goes.
    ///   - scope: the networks in scope: a target on one of them hears that network's
    ///     peers itself, and a broadcast reaches its whole network.
    ///   - turn: which slice to offer when there are more than fit.
    /// - Returns: at most `Announcement.maximumExchangedPeers` addresses.
    public static func offer(
        _ peers: [KnownPeer],
        to target: SocketAddress,
        scope: NetworkScope,
        turn: Int
    ) -> [Announcement.PeerAddress] {
        guard let targetAddress = NetworkScope.ipv4(target) else { return [] }
        let targetIsLoopback = targetAddress >> 24 == 127
        let network = scope.networks.first { $0.broadcast == targetAddress || $0.contains(targetAddress) }
        var offered: [Announcement.PeerAddress] = []
        for peer in peers where !peer.isObserver {
            guard let entry = Announcement.PeerAddress(peer.discoveryAddress), peer.discoveryAddress != target,
                entry.address >> 24 != 127 || targetIsLoopback,
                !(network?.contains(entry.address) ?? false)
            else { continue }
            offered.append(entry)
        }
        let limit = Announcement.maximumExchangedPeers
        guard offered.count > limit else { return offered }
        let start = (max(0, turn) % ((offered.count + limit - 1) / limit)) * limit
        return Array(offered[start..<min(start + limit, offered.count)])
    }

    /// Whether this peer would ever probe `address`: IPv4 unicast, not this host's, not on
    /// a network in scope.
    static func isProbeable(_ address: UInt32, scope: NetworkScope, localAddresses: Set<UInt32>) -> Bool {
        let first = address >> 24
        guard first != 0, first != 127, first < 224, address != 0xFFFF_FFFF else { return false }
        guard !localAddresses.contains(address) else { return false }
        return !scope.networks.contains { $0.contains(address) || $0.broadcast == address }
    }

    private mutating func takeProbe(now: NIODeadline) -> Bool {
        if let start = self.windowStart, now < start + self.interval {
            guard self.probesInWindow < self.limits.probesPerInterval else { return false }
        } else {
            self.windowStart = now
            self.probesInWindow = 0
        }
        self.probesInWindow += 1
        return true
    }

    private mutating func drop(_ key: Announcement.PeerAddress) {
        guard let gone = self.candidates.removeValue(forKey: key) else { return }
        let remaining = self.perVoucher[gone.voucher, default: 1] - 1
        self.perVoucher[gone.voucher] = remaining > 0 ? remaining : nil
    }

    private mutating func forgetSilence(now: NIODeadline) {
        guard !self.silent.isEmpty else { return }
        self.silent = self.silent.filter { $0.value > now }
    }
}
