/// Which other downloaders of a file each downloader relays to, as a value: a generalized
/// hypercube over the downloaders, so that a crowd of N holds O(N·K) connections rather
/// than O(N²), every chunk still reaches every downloader exactly once, and the seeder
/// still sends each chunk once (SPEC §12).
///
/// The downloaders are ranked (by the order given, which every downloader derives the same
/// way) and rank `r` is written with `d` digits in mixed radix: digit `i` has base `b_i`.
/// Two downloaders are partners when their ranks differ in exactly one digit: each has at
/// most `Σ (b_i − 1)` partners. A chunk spreads from the downloader the seeder handed it to
/// (its root) one digit at a time: the root forwards it to its partners in every digit; a
/// downloader that got it from a partner differing in digit `i` forwards it to its partners
/// in the digits below `i`. So every rank is reached once when the bases' product is the
/// crowd, along a path of at most `d` hops, and each downloader forwards on average one
/// copy of each chunk (the roots change from chunk to chunk, so the load evens out).
///
/// With `d = 1` this is today's flash crowd: every downloader relays to every other. The
/// shape is the fewest digits whose partners stay within `maximumPartners`, and of those
/// the bases whose product is the smallest that covers the crowd: a crowd of up to
/// `maximumPartners + 1` is one full mesh; 63 downloaders with 16 partners at most are a
/// 9 × 7 grid (14 partners, 2 hops); 40 with 8 are 5 × 4 × 2; 10,000 with 24 are
/// 5 × 5 × 5 × 5 × 4 × 4 (22 partners, 6 hops).
///
/// Ranks without a downloader (when no product of bases within the budget is exactly the
/// crowd) break the paths that pass through them: downloaders behind such a hole fetch
/// those chunks from a holder after the relay grace, as they fetch any chunk a relay lost.
package struct RelayOverlay: Sendable, Equatable {
    /// The base of each digit, the least significant first.
    package let bases: [Int]
    /// How many downloaders there are.
    package let count: Int

    /// The overlay for `count` downloaders with at most `maximumPartners` partners each
    /// (more only where fewer cannot reach everyone: every base is then 2).
    package init(count: Int, maximumPartners: Int) {
        let count = max(1, count)
        let budget = max(1, maximumPartners)
        self.count = count
        guard count > budget + 1 else {
            self.bases = [count]
            return
        }
        var dimensions = 2
        while true {
            if let bases = Self.smallestCover(of: count, dimensions: dimensions, budget: budget) {
                self.bases = bases
                return
            }
            if (1 << min(dimensions, 62)) >= count {
                self.bases = [Int](repeating: 2, count: dimensions)
                return
            }
            dimensions += 1
        }
    }

    /// Of the non-increasing bases (each at least 2) with `Σ (b − 1) ≤ budget` and a
    /// product of at least `count`, those with the smallest product (then the fewest
    /// partners); `nil` if there are none.
    private static func smallestCover(of count: Int, dimensions: Int, budget: Int) -> [Int]? {
        var best: (bases: [Int], product: Int, partners: Int)? = nil
        var bases: [Int] = []
        func extend(product: Int, partners: Int, largest: Int) {
            if bases.count == dimensions {
                guard product >= count else { return }
                if best.map({ (product, partners) < ($0.product, $0.partners) }) ?? true {
                    best = (bases, product, partners)
                }
                return
            }
            // Every digit still to come has a base of at least 2.
            let left = dimensions - bases.count - 1
            let widest = min(largest, budget - partners - left + 1, count)
            guard widest >= 2 else { return }
            for base in stride(from: widest, through: 2, by: -1) {
                let (next, overflow) = product.multipliedReportingOverflow(by: base)
                bases.append(base)
                extend(product: overflow ? Int.max : next, partners: partners + base - 1, largest: base)
                bases.removeLast()
            }
        }
        extend(product: 1, partners: 0, largest: count)
        return best?.bases
    }

    /// The number of digits, `d`.
    package var dimensions: Int { self.bases.count }

    /// The most partners any downloader has.
    package var maximumPartners: Int { self.bases.reduce(0) { $0 + $1 - 1 } }

    /// What a unit of digit `position` is worth.
    private func weight(_ position: Int) -> Int {
        self.bases[..<position].reduce(1, *)
    }

    /// The digit of `rank` at `position` (0: the least significant).
    private func digit(_ rank: Int, _ position: Int) -> Int {
        rank / self.weight(position) % self.bases[position]
    }

    /// The ranks that differ from `rank` in digit `position` only, that exist.
    private func neighbours(of rank: Int, in position: Int) -> [Int] {
        let weight = self.weight(position)
        let own = rank / weight % self.bases[position]
        var found: [Int] = []
        for value in 0..<self.bases[position] where value != own {
            let other = rank + (value - own) * weight
            if other < self.count { found.append(other) }
        }
        return found
    }

    /// The digit in which two partners' ranks differ; `nil` if they are not partners.
    package func differingDigit(_ rank: Int, _ other: Int) -> Int? {
        var differing: Int? = nil
        for position in 0..<self.dimensions where self.digit(rank, position) != self.digit(other, position) {
            guard differing == nil else { return nil }
            differing = position
        }
        return differing
    }

    /// The partners of the downloader at `rank`, in increasing rank.
    package func partners(of rank: Int) -> [Int] {
        guard rank >= 0 && rank < self.count else { return [] }
        return (0..<self.dimensions).flatMap { self.neighbours(of: rank, in: $0) }.sorted()
    }

    /// Where the downloader at `rank` forwards a chunk it got from the partner at `source`,
    /// or, with `source` nil, from the seeder (it is the chunk's root).
    package func onward(from rank: Int, receivedFrom source: Int?) -> [Int] {
        guard rank >= 0 && rank < self.count else { return [] }
        let below: Int
        if let source {
            guard let position = self.differingDigit(rank, source) else { return [] }
            below = position
        } else {
            below = self.dimensions
        }
        return (0..<below).flatMap { self.neighbours(of: rank, in: $0) }.sorted()
    }
}
