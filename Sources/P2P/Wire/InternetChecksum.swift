/// The 16-bit Internet checksum of RFC 1071, the seed's `udp_checksum` made exact.
///
/// The data is read as big-endian 16-bit words (an odd last byte is padded with a zero
/// byte), the words are added in one's-complement arithmetic (carries wrap around), and
/// the checksum is the one's complement of that sum.
///
/// The sum is computed over native 32-bit words into a 64-bit accumulator and folded at
/// the end: one's-complement addition does not care about word size or byte order
/// (RFC 1071 §2), so this runs at memory speed where a byte loop would not. Data may be
/// fed in pieces of any length; `update` keeps track of whether the next piece starts at
/// an odd offset.
public struct InternetChecksum: Sendable {
    /// Sum so far, of native-endian 32-bit words; folded only when read.
    private var accumulator: UInt64 = 0
    /// Whether an odd number of bytes has been consumed so far.
    private var odd = false

    /// A checksum over no bytes yet.
    public init() {}

    /// Adds bytes to the sum.
    /// - Parameter bytes: the next bytes of the data, in order.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        // The sum of a piece that starts at an odd offset is the byte-swapped sum of the
        // same bytes at an even one (RFC 1071 §2 (B)).
        let partial = Self.nativeFoldedSum(bytes)
        let aligned = self.odd ? partial.byteSwapped : partial
        self.accumulator &+= UInt64(aligned)
        if bytes.count % 2 == 1 { self.odd.toggle() }
    }

    /// Adds bytes to the sum.
    /// - Parameter bytes: the next bytes of the data, in order.
    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { self.update(UnsafeRawBufferPointer($0)) }
        if handled == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { self.update($0) }
        }
    }

    /// The one's-complement sum of the data so far, as a big-endian word value.
    public var sum: UInt16 {
        let folded = Self.fold(self.accumulator)
        return UInt16(bigEndian: folded)
    }

    /// The checksum: the one's complement of `sum`.
    public var value: UInt16 { ~self.sum }

    /// The checksum of `bytes` in one call.
    /// - Parameter bytes: the data.
    /// - Returns: the RFC 1071 checksum.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var checksum = InternetChecksum()
        checksum.update(bytes)
        return checksum.value
    }

    /// The checksum of `bytes` in one call.
    /// - Parameter bytes: the data.
    /// - Returns: the RFC 1071 checksum.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var checksum = InternetChecksum()
        checksum.update(bytes)
        return checksum.value
    }

    /// The plain 64-bit sum of the native 32-bit words of `bytes` (1 to 3 bytes left at the
    /// end count as one word, zero-padded), at memory speed: a fingerprint of the bytes for
    /// checking that a copy is unchanged, exact (no carry lost) for up to 2^32 words.
    /// - Parameter bytes: the data.
    /// - Returns: the sum.
    package static func wordSum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        guard let base = bytes.baseAddress else { return 0 }
        let words = bytes.count / 4
        var sum = Self.wordSum(base, words: words)
        let rest = bytes.count - words * 4
        if rest > 0 {
            var word: UInt32 = 0
            withUnsafeMutableBytes(of: &word) { tail in
                for offset in 0..<rest { tail[offset] = bytes[words * 4 + offset] }
            }
            sum &+= UInt64(word)
        }
        return sum
    }

    /// Folds a 64-bit one's-complement accumulator to 16 bits with end-around carries.
    @inline(__always)
    private static func fold(_ value: UInt64) -> UInt16 {
        var sum = (value >> 32) &+ (value & 0xFFFF_FFFF)
        sum = (sum >> 32) &+ (sum & 0xFFFF_FFFF)
        sum = (sum >> 16) &+ (sum & 0xFFFF)
        sum = (sum >> 16) &+ (sum & 0xFFFF)
        sum = (sum >> 16) &+ (sum & 0xFFFF)
        return UInt16(truncatingIfNeeded: sum)
    }

    /// The folded one's-complement sum of `bytes`, in native byte order, as if the data
    /// started at an even offset.
    private static func nativeFoldedSum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        guard let base = bytes.baseAddress else { return 0 }
        var total: UInt64 = 0
        var offset = 0
        let count = bytes.count
        // At most 2^30 words per block: 2^30 additions of values below 2^32 cannot
        // overflow 64 bits, so the inner loop needs no carry handling and vectorizes.
        let blockWords = 1 << 30
        while count - offset >= 4 {
            let words = min(blockWords, (count - offset) / 4)
            let block = Self.wordSum(base + offset, words: words)
            total = UInt64(Self.fold(total)) &+ UInt64(Self.fold(block))
            offset += words * 4
        }
        if count - offset >= 2 {
            total &+= UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            offset += 2
        }
        if offset < count {
            // The odd last byte is the high byte of a big-endian word padded with zero,
            // which is a word holding just that byte at its lower address.
            var word: UInt16 = 0
            withUnsafeMutableBytes(of: &word) { $0[0] = bytes[offset] }
            total &+= UInt64(word)
        }
        return Self.fold(total)
    }

    /// The plain sum of `words` native 32-bit words from `start`, which need not be aligned.
    ///
    /// A counted loop with no trapping arithmetic, reading two words per 64-bit load: the
    /// compiler vectorizes it. (Stepping an index by 4 up to an end offset kept the loop
    /// scalar because of the overflow check on the index: one word per iteration.)
    @inline(__always)
    private static func wordSum(_ start: UnsafeRawPointer, words: Int) -> UInt64 {
        var sum: UInt64 = 0
        let pairs = words / 2
        for pair in 0..<pairs {
            let two = start.loadUnaligned(fromByteOffset: pair &* 8, as: UInt64.self)
            sum &+= (two & 0xFFFF_FFFF) &+ (two >> 32)
        }
        if words % 2 == 1 {
            sum &+= UInt64(start.loadUnaligned(fromByteOffset: pairs &* 8, as: UInt32.self))
        }
        return sum
    }
}
