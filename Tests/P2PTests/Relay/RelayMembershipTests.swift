import Testing

@testable import P2P

/// Each downloader's own view of the relay overlay, built apart from the others' as real
/// peers build it: the ranks agree, a chunk reaches every downloader once, and a small
/// crowd keeps the flash crowd's full mesh.
@Suite("RelayMembership: one overlay derived alike by every downloader")
struct RelayMembershipTests {
    /// Peer ids in no particular order (the ranks come from sorting them).
    static func peers(_ count: Int) -> [PeerID] {
        (0..<count).map { PeerID(high: UInt64(($0 * 7_919) % 1_009), low: UInt64($0)) }
    }

    /// Every downloader's membership, each built from the same peers as it sees them.
    static func views(of peers: [PeerID], maximumPartners: Int) -> [PeerID: RelayMembership] {
        Dictionary(
            uniqueKeysWithValues: peers.map { me in
                (me, RelayMembership(me: me, downloaders: peers.filter { $0 != me }, maximumPartners: maximumPartners))
            }
        )
    }

    /// Spreads one chunk from `root`, each downloader forwarding as its own view says.
    /// - Returns: how many times each downloader got it.
    static func spread(from root: PeerID, in views: [PeerID: RelayMembership]) -> [PeerID: Int] {
        var received: [PeerID: Int] = [root: 1]
        var frontier: [(peer: PeerID, source: PeerID?)] = [(root, nil)]
        var steps = 0
        while let (peer, source) = frontier.popLast(), steps < 100_000 {
            steps += 1
            for next in views[peer]!.onward(receivedFrom: source) ?? Set(views.keys).subtracting([peer]) {
                received[next, default: 0] += 1
                frontier.append((next, peer))
            }
        }
        return received
    }

    /// The ranks a chunk from `root` reaches by the overlay's own rule.
    static func reach(_ overlay: RelayOverlay, from root: Int) -> Set<Int> {
        var reached: Set<Int> = [root]
        var frontier: [(rank: Int, source: Int?)] = [(root, nil)]
        while let (rank, source) = frontier.popLast() {
            for next in overlay.onward(from: rank, receivedFrom: source) where reached.insert(next).inserted {
                frontier.append((next, rank))
            }
        }
        return reached
    }

    @Test("up to the budget plus one it is a full mesh: work with everyone, forward handed-out chunks to all")
    func smallCrowdIsFullMesh() {
        let peers = Self.peers(17)
        let me = peers[3]
        let membership = RelayMembership(me: me, downloaders: peers, maximumPartners: 16)
        #expect(membership.isFullMesh)
        #expect(membership.members.count == 17)
        #expect(membership.partners == Set(peers).subtracting([me]))
        #expect(peers.filter { $0 != me }.allSatisfy(membership.worksWith))
        #expect(!membership.worksWith(me))
        #expect(membership.onward(receivedFrom: nil) == nil)
        #expect(membership.onward(receivedFrom: peers[0]) == [])
    }

    @Test("zero partners is a full mesh whatever the crowd")
    func zeroIsFullMesh() {
        let peers = Self.peers(63)
        let membership = RelayMembership(me: peers[0], downloaders: peers, maximumPartners: 0)
        #expect(membership.isFullMesh && membership.partners.count == 62)
    }

    @Test("63 downloaders, 16 partners at most: 9 × 7, each works with its 14 partners and every seeder")
    func crowdOfSixtyThree() {
        let peers = Self.peers(63)
        let seeder = PeerID(high: 9_999, low: 9_999)
        let views = Self.views(of: peers, maximumPartners: 16)
        for (me, view) in views {
            #expect(view.overlay.bases == [9, 7])
            #expect(view.partners.count == 14)
            #expect(view.worksWith(seeder), "a peer outside the crowd (a seeder) is always worked with")
            #expect(peers.filter(view.worksWith).count == 14)
            for partner in view.partners {
                #expect(views[partner]!.partners.contains(me), "partners are mutual")
            }
        }
    }

    @Test("a chunk handed to any downloader reaches every other exactly once, each forwarding by its own view")
    func everyChunkOnce() {
        for (count, budget) in [(63, 16), (40, 8), (100, 12), (6, 2)] {
            let peers = Self.peers(count)
            let views = Self.views(of: peers, maximumPartners: budget)
            for root in peers {
                let received = Self.spread(from: root, in: views)
                // Ranks without a downloader are not in the views: a path through one
                // breaks, and only then may a downloader miss the chunk. So the views reach
                // exactly whom the overlay's ranks reach.
                let overlay = views[root]!.overlay
                let ranked = views[root]!.members
                let reference = Self.reach(overlay, from: ranked.firstIndex(of: root)!)
                #expect(Set(received.keys) == Set(reference.map { ranked[$0] }), "\(count): from \(root)")
                if overlay.bases.reduce(1, *) == count {
                    #expect(received.count == count, "\(count): from \(root) reached \(received.count)")
                }
                #expect(received.values.allSatisfy { $0 == 1 }, "\(count): a downloader got a chunk twice")
            }
        }
    }

    @Test("one membership seen by each downloader is the membership that downloader derives itself")
    func seenByEachEqualsDerived() {
        let peers = Self.peers(40)
        let shared = RelayMembership(me: peers[5], downloaders: peers, maximumPartners: 8)
        for (me, derived) in Self.views(of: peers, maximumPartners: 8) {
            let seen = shared.seen(by: me)
            #expect(seen == derived)
            #expect(seen.partners == derived.partners)
            #expect(seen.onward(receivedFrom: nil) == derived.onward(receivedFrom: nil))
        }
    }

    @Test("a chunk relayed by a peer outside the view goes no further")
    func strangerSourceStops() {
        let peers = Self.peers(30)
        let membership = RelayMembership(me: peers[0], downloaders: peers, maximumPartners: 8)
        #expect(!membership.isFullMesh)
        #expect(membership.onward(receivedFrom: PeerID(high: 1 << 40, low: 0)) == [])
        #expect(membership.onward(receivedFrom: nil) == membership.partners)
    }
}
