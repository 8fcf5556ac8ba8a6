/// A peer's identity for one run: 128 random bits chosen at start.
///
/// Addresses are not identities: several peers share one host (and so one address), and a
/// peer that restarts is a new peer with chunks of its own. The id is how a peer recognises
/// its own broadcasts, which Linux delivers back to it.
public struct PeerID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The high 64 bits.
    public var high: UInt64
    /// The low 64 bits.
    public var low: UInt64

    /// Creates an id from its two halves.
    /// - Parameters:
    ///   - high: the high 64 bits.
    ///   - low: the low 64 bits.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A fresh random id from the system's secure generator.
    public static func random() -> PeerID {
        var generator = SystemRandomNumberGenerator()
        return PeerID(high: generator.next(), low: generator.next())
    }

    /// Parses the 32 hex digits that `description` prints.
    /// - Parameter hex: the id in hex, either case.
    public init?(hex: String) {
        // `UInt64(_:radix:)` alone would also take a leading "+" or "-".
        guard hex.utf8.count == 32, hex.utf8.allSatisfy(Self.isHexDigit),
            let high = UInt64(hex.prefix(16), radix: 16),
            let low = UInt64(hex.suffix(16), radix: 16)
        else { return nil }
        self.init(high: high, low: low)
    }

    /// 32 lower-case hex digits.
    public var description: String {
        Self.hex(self.high) + Self.hex(self.low)
    }

    /// The first 8 hex digits: enough to tell peers apart in a table or a log line.
    public var short: String { String(self.description.prefix(8)) }

    public static func < (lhs: PeerID, rhs: PeerID) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            true
        default:
            false
        }
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
