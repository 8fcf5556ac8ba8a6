import NIOCore
import P2P

/// Datagrams that are not valid discovery announcements, for robustness tests.
enum JunkDatagrams {
    /// A valid announcement's bytes, to damage.
    static func valid(kind: Announcement.Kind = .alive) -> [UInt8] {
        let announcement = Announcement(
            kind: kind,
            peerID: .random(),
            transferPort: 40_000,
            announceIntervalMilliseconds: 500
        )
        var buffer = announcement.encoded()
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    /// Rewrites the checksum field (bytes 6...7) so that only the intended damage remains.
    static func withFixedChecksum(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count >= 8 else { return bytes }
        var copy = bytes
        copy[6] = 0
        copy[7] = 0
        let checksum = InternetChecksum.checksum(copy)
        copy[6] = UInt8(checksum >> 8)
        copy[7] = UInt8(checksum & 0xFF)
        return copy
    }

    /// Every kind of junk: empty, random bytes of many lengths, truncated and extended
    /// announcements, bad magic, version, kind, checksum, and a zero interval (the last
    /// ones with a correct checksum, so that each check is reached).
    static func all() -> [[UInt8]] {
        var generator = SystemRandomNumberGenerator()
        var junk: [[UInt8]] = [[]]
        for length in [1, 4, 8, 29, 30, 31, 32, 33, 64, 512, 1400] {
            junk.append((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
        }
        // Random bytes after a correct magic and version, of the right length.
        for _ in 0..<8 {
            junk.append(
                Announcement.magic + [Announcement.version] + (0..<25).map { _ in UInt8.random(in: 0...255) } + [0, 0]
            )
        }
        let valid = Self.valid(kind: .start)
        for length in [4, 5, 6, 8, 24, 26, 29, 30, 31] {
            junk.append(Array(valid.prefix(length)))
        }
        junk.append(valid + [0])
        junk.append(valid + valid)
        var badMagic = valid
        badMagic[0] = UInt8(ascii: "X")
        junk.append(Self.withFixedChecksum(badMagic))
        var badVersion = valid
        badVersion[4] = 99
        junk.append(Self.withFixedChecksum(badVersion))
        var badKind = valid
        badKind[5] = 77
        junk.append(Self.withFixedChecksum(badKind))
        var badChecksum = valid
        badChecksum[7] ^= 0x5A
        junk.append(badChecksum)
        var flippedID = valid
        flippedID[12] ^= 0x01
        junk.append(flippedID)
        var zeroInterval = Self.valid(kind: .alive)
        zeroInterval[26...29] = [0, 0, 0, 0]
        junk.append(Self.withFixedChecksum(zeroInterval))
        return junk
    }
}
