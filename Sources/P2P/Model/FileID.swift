import Crypto

/// A file's identity: the SHA-256 of its manifest. Two peers that hold the same bytes
/// under the same name and chunk size hold the same file id; a name alone proves nothing.
public struct FileID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 32 digest bytes.
    public let bytes: [UInt8]

    /// Bytes on the wire.
    public static let byteCount = 32

    /// Wraps 32 digest bytes.
    /// - Parameter bytes: exactly 32 bytes.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = Array(bytes)
    }

    /// The id of an encoded manifest.
    /// - Parameter manifestBytes: the manifest as encoded.
    public init(hashing manifestBytes: some Sequence<UInt8>) {
        var hasher = SHA256()
        let array = Array(manifestBytes)
        hasher.update(data: array)
        self.bytes = Array(hasher.finalize())
    }

    /// Parses 64 hex digits.
    /// - Parameter hex: the id in hex.
    public init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 2 * Self.byteCount else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.byteCount)
        var index = 0
        while index < utf8.count {
            guard let high = Self.nibble(utf8[index]), let low = Self.nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.bytes = bytes
    }

    /// 64 lower-case hex digits.
    public var description: String {
        self.bytes.map { byte in
            let digits = String(byte, radix: 16)
            return byte < 16 ? "0" + digits : digits
        }.joined()
    }

    /// The first 12 hex digits, enough to tell files apart in a table.
    public var short: String { String(self.description.prefix(12)) }

    public static func < (lhs: FileID, rhs: FileID) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
