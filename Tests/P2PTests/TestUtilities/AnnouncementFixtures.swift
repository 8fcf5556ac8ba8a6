import NIOCore
import P2P

extension SeededGenerator {
    /// A random peer id.
    mutating func peerID() -> PeerID {
        PeerID(high: self.next(), low: self.next())
    }
}

/// Writes a correct checksum into a 30-byte discovery datagram whose other fields have been
/// changed, using the reference implementation, so a test can reach the checks behind the
/// checksum.
func withFixedChecksum(_ bytes: [UInt8]) -> [UInt8] {
    var bytes = bytes
    bytes[6] = 0
    bytes[7] = 0
    let checksum = ReferenceChecksum.checksum(bytes)
    bytes[6] = UInt8(checksum >> 8)
    bytes[7] = UInt8(checksum & 0xFF)
    return bytes
}

/// The error `Announcement.parse` throws for `bytes`, or `nil` if it parses.
func announcementError(_ bytes: [UInt8]) -> AnnouncementError? {
    do {
        _ = try Announcement.parse(ByteBuffer(bytes: bytes))
        return nil
    } catch {
        return error
    }
}
