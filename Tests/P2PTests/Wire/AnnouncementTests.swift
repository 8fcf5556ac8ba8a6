import NIOCore
import P2P
import Testing

@Suite("Announcement")
struct AnnouncementTests {
    static let kinds: [Announcement.Kind] = [.start, .alive, .stop]

    @Test("every kind survives encode and parse", arguments: Self.kinds)
    func roundTrip(kind: Announcement.Kind) throws {
        var generator = SeededGenerator(seed: UInt64(kind.rawValue))
        for (port, interval) in [(0, 1), (1, 200), (47_474, 2000), (65_535, UInt32.max)] as [(UInt16, UInt32)] {
            let announcement = Announcement(
                kind: kind,
                peerID: generator.peerID(),
                transferPort: port,
                announceIntervalMilliseconds: interval
            )
            let encoded = announcement.encoded()
            #expect(encoded.readableBytes == Announcement.minimumLength)
            #expect(try Announcement.parse(encoded) == announcement)
        }
    }

    @Test("a name and exchanged peers survive encode and parse; the longest datagram is the documented maximum")
    func roundTripWithNameAndPeers() throws {
        var generator = SeededGenerator(seed: 11)
        let peers = (0..<Announcement.maximumExchangedPeers).map { index in
            Announcement.PeerAddress(address: 0xC612_0000 | UInt32(index + 1), port: UInt16(40_000 + index))
        }
        let announcement = Announcement(
            kind: .alive,
            peerID: generator.peerID(),
            transferPort: 7000,
            announceIntervalMilliseconds: 2000,
            name: try PeerName(String(repeating: "é", count: PeerName.maximumLength / 2)),
            peers: peers
        )
        let encoded = announcement.encoded()
        #expect(encoded.readableBytes == Announcement.maximumLength)
        #expect(try Announcement.parse(encoded) == announcement)
        // More addresses than fit are not encoded.
        var crowded = announcement
        crowded.peers += peers
        #expect(try Announcement.parse(crowded.encoded()).peers == peers)
    }

    @Test("a name against the rules, too many or zero addresses: refused whole")
    func badNamesAndPeers() {
        var generator = SeededGenerator(seed: 12)
        let base = Announcement(
            kind: .alive,
            peerID: generator.peerID(),
            transferPort: 1,
            announceIntervalMilliseconds: 1
        )
        .encoded().bytes
        func with(name: [UInt8], peers: [UInt8], count: UInt8) -> [UInt8] {
            withFixedChecksum(Array(base.prefix(30)) + [UInt8(name.count)] + name + [count] + peers)
        }
        #expect(announcementError(with(name: Array("ok".utf8), peers: [], count: 0)) == nil)
        #expect(announcementError(with(name: [0x6F, 0x0A], peers: [], count: 0)) == .badName)
        #expect(announcementError(with(name: Array("a\u{202E}b".utf8), peers: [], count: 0)) == .badName)
        #expect(announcementError(with(name: [0xFF, 0xFE], peers: [], count: 0)) == .badName)
        #expect(announcementError(with(name: Array(repeating: 0x61, count: 65), peers: [], count: 0)) == .badName)
        #expect(
            announcementError(with(name: [], peers: Array(repeating: 1, count: 6 * 33), count: 33)) == .tooManyPeers(33)
        )
        #expect(announcementError(with(name: [], peers: [0, 0, 0, 0, 1, 1], count: 1)) == .badPeerAddress)
        #expect(announcementError(with(name: [], peers: [1, 1, 1, 1, 0, 0], count: 1)) == .badPeerAddress)
        #expect(announcementError(with(name: [], peers: [1, 1, 1, 1, 1], count: 1)) == .wrongLength(31 + 1 + 5))
    }

    @Test("the datagram follows the documented layout and its checksum verifies")
    func wireLayout() {
        let announcement = Announcement(
            kind: .alive,
            peerID: PeerID(high: 0x0102_0304_0506_0708, low: 0x090A_0B0C_0D0E_0F10),
            transferPort: 0xABCD,
            announceIntervalMilliseconds: 0x0001_E240
        )
        let bytes = announcement.encoded().bytes
        #expect(Array(bytes[0..<4]) == Array("P2PD".utf8))
        #expect(bytes[4] == 2)
        #expect(bytes[5] == 2)
        #expect(Array(bytes[30...]) == [0, 0])
        #expect(Array(bytes[8..<24]) == Array(1...16))
        #expect(Array(bytes[24..<26]) == [0xAB, 0xCD])
        #expect(Array(bytes[26..<30]) == [0x00, 0x01, 0xE2, 0x40])
        #expect(ReferenceChecksum.checksum(bytes) == 0)
        #expect(withFixedChecksum(bytes) == bytes)
    }

    @Test("a datagram behind an advanced reader index parses")
    func readerIndex() throws {
        var generator = SeededGenerator(seed: 3)
        let announcement = Announcement(
            kind: .start,
            peerID: generator.peerID(),
            transferPort: 9,
            announceIntervalMilliseconds: 9
        )
        var buffer = ByteBuffer(bytes: [0xEE, 0xEE, 0xEE])
        buffer.moveReaderIndex(forwardBy: 3)
        var encoded = announcement.encoded()
        buffer.writeBuffer(&encoded)
        #expect(try Announcement.parse(buffer) == announcement)
    }

    @Test(
        "a datagram of any length but 32 (nameless, no peers): wrongLength",
        arguments: [0, 1, 4, 29, 31, 33, 60, 1500]
    )
    func wrongLength(length: Int) {
        var generator = SeededGenerator(seed: 4)
        var bytes = Announcement(
            kind: .alive,
            peerID: generator.peerID(),
            transferPort: 1,
            announceIntervalMilliseconds: 1
        )
        .encoded().bytes
        if length < bytes.count {
            bytes = Array(bytes.prefix(length))
        } else {
            bytes += generator.bytes(length - bytes.count)
        }
        #expect(announcementError(bytes) == .wrongLength(length))
    }

    @Test("a changed magic byte: badMagic", arguments: 0..<4)
    func badMagic(index: Int) {
        var generator = SeededGenerator(seed: 5)
        var bytes = Announcement(
            kind: .alive,
            peerID: generator.peerID(),
            transferPort: 1,
            announceIntervalMilliseconds: 1
        )
        .encoded().bytes
        bytes[index] ^= 0x20
        // Even with a checksum that fits, the magic is wrong.
        #expect(announcementError(bytes) == .badMagic)
        #expect(announcementError(withFixedChecksum(bytes)) == .badMagic)
    }

    @Test("a version other than 2: unsupportedVersion", arguments: [0, 1, 3, 0xFF] as [UInt8])
    func unsupportedVersion(version: UInt8) {
        var generator = SeededGenerator(seed: 6)
        var bytes = Announcement(
            kind: .alive,
            peerID: generator.peerID(),
            transferPort: 1,
            announceIntervalMilliseconds: 1
        )
        .encoded().bytes
        bytes[4] = version
        #expect(announcementError(withFixedChecksum(bytes)) == .unsupportedVersion(version))
    }

    @Test("any flipped bit after the version: badChecksum", arguments: 40..<240)
    func badChecksum(bit: Int) {
        var generator = SeededGenerator(seed: 7)
        var bytes = Announcement(
            kind: .alive,
            peerID: generator.peerID(),
            transferPort: 80,
            announceIntervalMilliseconds: 500
        )
        .encoded().bytes
        bytes[bit / 8] ^= 1 << (bit % 8)
        #expect(announcementError(bytes) == .badChecksum)
    }

    @Test("a kind other than start, alive, stop: unknownKind", arguments: [0, 4, 0x80, 0xFF] as [UInt8])
    func unknownKind(kind: UInt8) {
        var generator = SeededGenerator(seed: 8)
        var bytes = Announcement(
            kind: .alive,
            peerID: generator.peerID(),
            transferPort: 1,
            announceIntervalMilliseconds: 1
        )
        .encoded().bytes
        bytes[5] = kind
        #expect(announcementError(withFixedChecksum(bytes)) == .unknownKind(kind))
    }

    @Test("an announce interval of zero: zeroInterval")
    func zeroInterval() {
        var generator = SeededGenerator(seed: 9)
        let bytes = Announcement(
            kind: .alive,
            peerID: generator.peerID(),
            transferPort: 1,
            announceIntervalMilliseconds: 0
        )
        .encoded().bytes
        #expect(announcementError(bytes) == .zeroInterval)
    }

    @Test("10,000 random datagrams never crash the parser, and only valid ones parse")
    func fuzz() throws {
        var generator = SeededGenerator(seed: 0xF022)
        var parsed = 0
        var errors: [String: Int] = [:]
        for round in 0..<10_000 {
            var bytes: [UInt8]
            switch round % 4 {
            case 0:
                // Anything at all.
                bytes = generator.bytes(Int.random(in: 0...64, using: &generator))
            case 1:
                // The right length, random content.
                bytes = generator.bytes(Announcement.minimumLength)
            case 2:
                // The right magic and version, random rest, correct checksum: reaches the
                // kind and interval checks.
                bytes = Array("P2PD".utf8) + [2] + generator.bytes(25) + [0, 0]
                bytes[5] = UInt8.random(in: 0...4, using: &generator)
                if Bool.random(using: &generator) { bytes[26...29] = [0, 0, 0, 0] }
                bytes = withFixedChecksum(bytes)
            default:
                // A valid datagram with a few random bytes changed.
                bytes =
                    Announcement(
                        kind: [.start, .alive, .stop].randomElement(using: &generator)!,
                        peerID: generator.peerID(),
                        transferPort: UInt16.random(in: 0...UInt16.max, using: &generator),
                        announceIntervalMilliseconds: UInt32.random(in: 1...UInt32.max, using: &generator)
                    ).encoded().bytes
                for _ in 0..<Int.random(in: 0...2, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(
                        in: 0...255,
                        using: &generator
                    )
                }
            }

            let valid = Self.isValid(bytes)
            do {
                let announcement = try Announcement.parse(ByteBuffer(bytes: bytes))
                parsed += 1
                #expect(valid, "parsed an invalid datagram \(bytes)")
                // What parses encodes back to the same bytes. (When the other fields sum to
                // 0xFFFF, both 0x0000 and 0xFFFF verify as checksum; the encoder writes the
                // one the reference computes.)
                #expect(announcement.encoded().bytes == withFixedChecksum(bytes))
            } catch {
                errors["\(error)".prefix(14).description, default: 0] += 1
                #expect(!valid, "refused a valid datagram \(bytes): \(error)")
            }
        }
        // The generator reached both outcomes and every kind of error.
        #expect(parsed > 500)
        #expect(errors.count >= 6, "\(errors)")
    }

    /// Validity by the documented rules, written independently of `parse`.
    static func isValid(_ bytes: [UInt8]) -> Bool {
        guard bytes.count == 32, Array(bytes[0..<4]) == Array("P2PD".utf8), bytes[4] == 2 else { return false }
        guard bytes[30] == 0, bytes[31] == 0 else { return false }
        guard ReferenceChecksum.checksum(bytes) == 0 else { return false }
        guard (1...3).contains(bytes[5]) else { return false }
        return bytes[26...29].contains { $0 != 0 }
    }
}
