import Testing

@testable import P2P

@Suite("RelayOverlay: bounded relay partners that still bring every chunk to everyone once")
struct RelayOverlayTests {
    /// Spreads one chunk from `root` as the overlay says.
    /// - Returns: how many times each rank got it, and the most hops any took.
    func spread(_ overlay: RelayOverlay, from root: Int) -> (received: [Int], hops: Int) {
        var received = [Int](repeating: 0, count: overlay.count)
        received[root] = 1
        var frontier: [(rank: Int, source: Int?, hops: Int)] = [(root, nil, 0)]
        var deepest = 0
        while let (rank, source, hops) = frontier.popLast() {
            deepest = max(deepest, hops)
            for next in overlay.onward(from: rank, receivedFrom: source) {
                received[next] += 1
                frontier.append((next, rank, hops + 1))
            }
        }
        return (received, deepest)
    }

    @Test("a crowd within the partner budget is one full mesh, as the flash crowd always was")
    func smallCrowdIsFullMesh() {
        for count in [1, 2, 8, 15, 17] {
            let overlay = RelayOverlay(count: count, maximumPartners: 16)
            #expect(overlay.dimensions == 1)
            #expect(overlay.partners(of: 0).count == count - 1)
            let (received, hops) = self.spread(overlay, from: count - 1)
            #expect(received.allSatisfy { $0 == 1 })
            #expect(hops <= 1)
        }
    }

    @Test("shapes: the fewest digits whose partner count fits the budget")
    func shapes() {
        let crowd = RelayOverlay(count: 63, maximumPartners: 16)
        #expect(crowd.bases == [9, 7] && crowd.maximumPartners == 14)
        let odd = RelayOverlay(count: 40, maximumPartners: 8)
        #expect(odd.bases == [5, 4, 2] && odd.maximumPartners == 8)
        let large = RelayOverlay(count: 10_000, maximumPartners: 24)
        #expect(large.bases == [5, 5, 5, 5, 4, 4] && large.maximumPartners == 22)
        let tight = RelayOverlay(count: 1_000, maximumPartners: 1)
        #expect(tight.bases == [Int](repeating: 2, count: 10))
    }

    @Test("partners are mutual and within the budget, for crowds of every size up to 100")
    func partnersMutualAndBounded() {
        for count in 1...100 {
            let overlay = RelayOverlay(count: count, maximumPartners: 12)
            for rank in 0..<count {
                let partners = overlay.partners(of: rank)
                #expect(partners.count <= 12, "\(rank) of \(count)")
                #expect(!partners.contains(rank))
                for partner in partners {
                    #expect(overlay.partners(of: partner).contains(rank), "\(rank) and \(partner) of \(count)")
                }
            }
        }
    }

    @Test("in a full grid every chunk reaches every downloader exactly once, within d hops, from any root")
    func fullGridReachesEveryoneOnce() {
        for (count, budget) in [(64, 14), (27, 6), (256, 8), (40, 8), (63, 16)] {
            let overlay = RelayOverlay(count: count, maximumPartners: budget)
            #expect(overlay.bases.reduce(1, *) == count)
            var forwardsBy = [Int](repeating: 0, count: count)
            for root in 0..<count {
                let (received, hops) = self.spread(overlay, from: root)
                #expect(received.allSatisfy { $0 == 1 }, "root \(root) of \(count)")
                #expect(hops <= overlay.dimensions)
                // Who forwarded how much, over every root: each forwards one copy per chunk
                // on average, and exactly that when every rank is a root once.
                var stack: [(Int, Int?)] = [(root, nil)]
                while let (rank, source) = stack.popLast() {
                    let onward = overlay.onward(from: rank, receivedFrom: source)
                    forwardsBy[rank] += onward.count
                    stack += onward.map { ($0, rank) }
                }
            }
            #expect(forwardsBy.allSatisfy { $0 == count - 1 }, "\(count): \(Set(forwardsBy))")
        }
    }

    @Test("with ranks missing from the grid, nobody gets a chunk twice and most get it relayed")
    func partialGridNeverDuplicates() {
        for count in [50, 63, 65, 100, 250] {
            let overlay = RelayOverlay(count: count, maximumPartners: 16)
            var reached = 0
            for root in 0..<count {
                let (received, _) = self.spread(overlay, from: root)
                #expect(received.allSatisfy { $0 <= 1 })
                reached += received.reduce(0, +)
            }
            // What the holes cut off is fetched from holders; it stays a small share.
            let share = Double(reached) / Double(count * count)
            #expect(share > 0.85, "\(count): \(share)")
        }
    }

    @Test("a chunk from someone who is not a partner goes nowhere; a rank outside the crowd has no partners")
    func strangers() {
        let overlay = RelayOverlay(count: 64, maximumPartners: 14)
        // 0 and 9 differ in both digits (base 8).
        #expect(overlay.differingDigit(0, 9) == nil)
        #expect(overlay.onward(from: 0, receivedFrom: 9).isEmpty)
        #expect(overlay.partners(of: 64).isEmpty && overlay.partners(of: -1).isEmpty)
    }
}
