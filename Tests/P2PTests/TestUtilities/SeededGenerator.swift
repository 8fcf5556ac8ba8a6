import P2P

/// The library's seeded generator (SplitMix64), under the name the tests know it by, so
/// that a failing property test fails the same way on the next run.
typealias SeededGenerator = SeededRandom

extension SeededRandom {
    /// `count` random bytes.
    mutating func bytes(_ count: Int) -> [UInt8] {
        var result = [UInt8]()
        result.reserveCapacity(count)
        while result.count < count {
            var word = self.next()
            for _ in 0..<min(8, count - result.count) {
                result.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return result
    }
}
