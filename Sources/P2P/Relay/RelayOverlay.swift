/// Which other downloaders of a file each downloader relays to, as a value: a generalized
/// hypercube over the downloaders, so that a crowd of N holds O(N·K) connections rather
/// than O(N²), every chunk still reaches every downloader exactly once, and the seeder
/// still sends each chunk once (SPEC §12).
///
/// The downloaders are ranked (by the order given, which every downloader derives the same
/// way) and rank `r` is written in base `b` with `d` digits. Two downloaders are partners
/// when their ranks differ in exactly one digit: each has at most `d·(b − 1)` partners.
/// A chunk spreads from the downloader the seeder handed it to (its root) one digit at a
/// time: the root forwards it to its partners in every digit; a downloader that got it from
/// a partner differing in digit `i` forwards it to its partners in the digits below `i`.
/// So every rank below `b^d` is reached once, along a path of at most `d` hops, and each
/// downloader forwards on average one copy of each chunk (the roots change from chunk to
/// chunk, so the load evens out).
///
/// With `d = 1` this is today's flash crowd: every downloader relays to every other. The
/// shape is the fewest digits whose partner count stays within `maximumPartners`: a crowd
/// of up to `maximumPartners + 1` is one full mesh; 63 downloaders with 16 partners at most
/// are an 8 × 8 grid (14 partners, 2 hops); 10,000 with 24 are 5^6 (24 partners, 6 hops).
///
/// Ranks without a downloader (the grid's last row is partly empty) break the paths that
/// pass through them: downloaders behind such a hole fetch those chunks from a holder
/// after the relay grace, as they fetch any chunk a relay lost.
package struct RelayOverlay: Sendable, Equatable {
    /// The number of digits, `d`.
    package let dimensions: Int
    /// The base, `b`.
    package let base: Int
    /// How many downloaders there are.
    package let count: Int

    /// The overlay for `count` downloaders with at most `maximumPartners` partners each.
    package init(count: Int, maximumPartners: Int) {
        let count = max(1, count)
        let budget = max(1, maximumPartners)
        self.count = count
        guard count > budget + 1 else {
            self.dimensions = 1
            self.base = count
            return
        }
        var dimensions = 2
        while true {
            let base = Self.smallestBase(covering: count, dimensions: dimensions)
            if dimensions * (base - 1) <= budget || base == 2 {
                self.dimensions = dimensions
                self.base = base
                return
            }
            dimensions += 1
        }
    }

    /// The smallest `b` with `b^d ≥ count`.
    private static func smallestBase(covering count: Int, dimensions: Int) -> Int {
        var base = 2
        while Self.power(base, dimensions) < count { base += 1 }
        return base
    }

    private static func power(_ base: Int, _ exponent: Int) -> Int {
        var result = 1
        for _ in 0..<exponent {
            let (product, overflow) = result.multipliedReportingOverflow(by: base)
            if overflow { return Int.max }
            result = product
        }
        return result
    }

    /// The most partners any downloader has.
    package var maximumPartners: Int { self.dimensions * (self.base - 1) }

    /// The digit of `rank` at `position` (0: the least significant).
    private func digit(_ rank: Int, _ position: Int) -> Int {
        var rank = rank
        for _ in 0..<position { rank /= self.base }
        return rank % self.base
    }

    /// The ranks that differ from `rank` in digit `position` only, that exist.
    private func neighbours(of rank: Int, in position: Int) -> [Int] {
        var weight = 1
        for _ in 0..<position { weight *= self.base }
        let own = self.digit(rank, position)
        var found: [Int] = []
        for value in 0..<self.base where value != own {
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
