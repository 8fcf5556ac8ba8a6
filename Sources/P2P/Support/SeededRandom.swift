/// A small deterministic random number generator (SplitMix64): the same seed gives the
/// same sequence, so that a run whose timing depends on random choices can be repeated
/// (tests, the simulator). Not for keys or nonces: those come from the system generator.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator.
    /// - Parameter seed: the seed; the same seed gives the same sequence.
    public init(seed: UInt64) {
        self.state = seed
    }

    /// A generator seeded from the system's generator, for runs that need not repeat.
    public static func fromSystem() -> SeededRandom {
        var system = SystemRandomNumberGenerator()
        return SeededRandom(seed: system.next())
    }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var value = self.state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
