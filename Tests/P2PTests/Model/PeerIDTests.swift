import P2P
import Testing

@Suite("PeerID")
struct PeerIDTests {
    @Test("description is 32 lower-case hex digits that parse back to the same id")
    func hexRoundTrip() throws {
        var generator = SeededGenerator(seed: 0x1D)
        var ids = (0..<200).map { _ in generator.peerID() }
        ids += [
            PeerID(high: 0, low: 0),
            PeerID(high: 0, low: 1),
            PeerID(high: 1, low: 0),
            PeerID(high: .max, low: .max),
        ]
        for id in ids {
            let hex = id.description
            #expect(hex.utf8.count == 32)
            #expect(hex.allSatisfy { "0123456789abcdef".contains($0) }, "\(hex)")
            #expect(PeerID(hex: hex) == id)
            #expect(PeerID(hex: hex.uppercased()) == id)
        }
    }

    @Test("known values print with leading zeros, high half first")
    func knownValues() {
        #expect(PeerID(high: 0, low: 1).description == "00000000000000000000000000000001")
        #expect(
            PeerID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210).description
                == "0123456789abcdeffedcba9876543210"
        )
        #expect(
            PeerID(hex: "0123456789ABCDEFfedcba9876543210")
                == PeerID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)
        )
    }

    @Test("short is the first 8 hex digits")
    func short() {
        #expect(PeerID(high: 0x0123_4567_89AB_CDEF, low: 42).short == "01234567")
        #expect(PeerID(high: 0, low: .max).short == "00000000")
        var generator = SeededGenerator(seed: 8)
        for _ in 0..<50 {
            let id = generator.peerID()
            #expect(id.short == String(id.description.prefix(8)))
            #expect(id.short.count == 8)
        }
    }

    @Test(
        "anything but exactly 32 hex digits is rejected",
        arguments: [
            "",
            "0",
            "0000000000000000000000000000000",  // 31 digits
            "000000000000000000000000000000000",  // 33 digits
            "0000000000000000000000000000000g",
            "g0000000000000000000000000000000",
            "0x000000000000000000000000000001",
            "+0000000000000010000000000000001",  // a sign is not a hex digit
            "0000000000000000+000000000000001",
            "-0000000000000000000000000000000",
            "0000000000000000-000000000000000",
            " 000000000000000000000000000000 ",
            "00000000-0000-0000-0000-00000001",
            "00000000000000000000000000000\u{e9}",  // 31 characters, 32 UTF-8 bytes
        ]
    )
    func invalidHex(text: String) {
        #expect(PeerID(hex: text) == nil)
    }

    @Test("ids order by high half, then low half")
    func ordering() {
        #expect(PeerID(high: 0, low: .max) < PeerID(high: 1, low: 0))
        #expect(PeerID(high: 1, low: 1) < PeerID(high: 1, low: 2))
        #expect(!(PeerID(high: 1, low: 2) < PeerID(high: 1, low: 2)))
    }

    @Test("random ids differ")
    func random() {
        let ids = Set((0..<100).map { _ in PeerID.random() })
        #expect(ids.count == 100)
    }
}
