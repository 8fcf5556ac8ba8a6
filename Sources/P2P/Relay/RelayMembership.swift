/// The downloaders of one file as this peer sees them, and its place among them in the
/// relay overlay (SPEC §12), as a value: whom it works with, and whom it forwards a chunk
/// to.
///
/// The downloaders are ranked by peer id, so every downloader that knows the same peers
/// derives the same ranks and the same `RelayOverlay`; on one broadcast domain every
/// downloader hears every peer within an announce interval, and the views agree. A view
/// that differs for a while costs time and some bytes: a chunk whose path it breaks is
/// fetched from a holder after the relay grace, as any chunk a relay lost, and one it sends
/// twice is dropped on arrival.
///
/// Up to `maximumPartners + 1` downloaders the overlay is one full mesh, and the rules are
/// the flash crowd's: work with every peer, forward what the seeder hands out to every
/// subscriber, and nothing that came relayed.
package struct RelayMembership: Sendable, Equatable {
    /// This peer.
    package let me: PeerID
    /// The downloaders, this peer among them, in rank order.
    package let members: [PeerID]
    /// The overlay over them.
    package let overlay: RelayOverlay
    private let ranks: [PeerID: Int]

    /// The membership of `me` among `downloaders`.
    /// - Parameters:
    ///   - me: this peer, counted whether or not `downloaders` names it.
    ///   - downloaders: the other peers downloading the file (repeats are ignored).
    ///   - maximumPartners: the most partners any downloader has; zero or less for one full
    ///     mesh whatever the crowd's size.
    package init(me: PeerID, downloaders: some Sequence<PeerID>, maximumPartners: Int) {
        let members = Set(downloaders).union([me]).sorted()
        self.me = me
        self.members = members
        self.overlay = RelayOverlay(
            count: members.count,
            maximumPartners: maximumPartners > 0 ? maximumPartners : members.count
        )
        self.ranks = Dictionary(uniqueKeysWithValues: members.enumerated().map { ($1, $0) })
    }

    private init(me: PeerID, members: [PeerID], overlay: RelayOverlay, ranks: [PeerID: Int]) {
        self.me = me
        self.members = members
        self.overlay = overlay
        self.ranks = ranks
    }

    /// The same downloaders as seen by `peer`, one of them: its place in the same overlay.
    /// The ranks are shared, not derived again.
    package func seen(by peer: PeerID) -> RelayMembership {
        precondition(self.isMember(peer), "\(peer) is not among the downloaders")
        return RelayMembership(me: peer, members: self.members, overlay: self.overlay, ranks: self.ranks)
    }

    /// Whether every downloader relays to every other (the crowd fits the partner budget).
    package var isFullMesh: Bool { self.overlay.dimensions == 1 }

    /// Whether `peer` is counted among the downloaders.
    package func isMember(_ peer: PeerID) -> Bool { self.ranks[peer] != nil }

    /// This peer's partners: the downloaders it relays with.
    package var partners: Set<PeerID> {
        guard let rank = self.ranks[self.me] else { return [] }
        return Set(self.overlay.partners(of: rank).map { self.members[$0] })
    }

    /// Whether this peer opens a connection to `peer` for the download: every peer in a
    /// full mesh; otherwise its partners, and peers that are not downloaders (the seeders,
    /// which hold the whole file).
    package func worksWith(_ peer: PeerID) -> Bool {
        guard peer != self.me else { return false }
        guard !self.isFullMesh, let rank = self.ranks[peer], let own = self.ranks[self.me] else { return true }
        return self.overlay.differingDigit(own, rank) != nil
    }

    /// Whom this peer forwards a chunk to: `nil` for every subscriber (a chunk handed out
    /// by the seeder, in a full mesh), otherwise the peers named.
    /// - Parameter source: the partner the chunk came relayed from; `nil` if the seeder
    ///   handed it out here.
    package func onward(receivedFrom source: PeerID?) -> Set<PeerID>? {
        if self.isFullMesh { return source == nil ? nil : [] }
        guard let own = self.ranks[self.me] else { return [] }
        let sourceRank: Int?
        if let source {
            // A chunk relayed by a peer outside the view has no place in the overlay: it
            // goes no further, and whoever misses it fetches it after the grace.
            guard let rank = self.ranks[source] else { return [] }
            sourceRank = rank
        } else {
            sourceRank = nil
        }
        return Set(self.overlay.onward(from: own, receivedFrom: sourceRank).map { self.members[$0] })
    }
}
