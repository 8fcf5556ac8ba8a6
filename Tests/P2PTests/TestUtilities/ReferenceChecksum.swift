/// RFC 1071 written the slow, obvious way, to check the fast implementation against:
/// big-endian 16-bit words taken byte pair by byte pair, an odd last byte padded with a
/// zero byte, each addition's carry wrapped around at once.
enum ReferenceChecksum {
    /// The one's-complement sum of `bytes` as 16-bit big-endian words.
    static func sum(_ bytes: some Collection<UInt8>) -> UInt16 {
        let bytes = Array(bytes)
        var sum: UInt32 = 0
        var index = 0
        while index < bytes.count {
            let high = UInt32(bytes[index]) << 8
            let low = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            sum += high | low
            sum = (sum & 0xFFFF) + (sum >> 16)
            index += 2
        }
        return UInt16(sum)
    }

    /// The checksum: the one's complement of `sum`.
    static func checksum(_ bytes: some Collection<UInt8>) -> UInt16 {
        ~self.sum(bytes)
    }
}
