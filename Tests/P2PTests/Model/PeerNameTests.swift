import Testing

@testable import P2P

/// Device names: the display rules of file names, and a host name made valid.
@Suite("PeerName")
struct PeerNameTests {
    @Test(
        "names against the rules are refused",
        arguments: [
            "", " lead", "trail ", "tab\there", "new\nline", "a\u{202E}b", "zero\u{200B}width",
            String(repeating: "x", count: 65),
        ]
    )
    func refused(name: String) {
        #expect(PeerName.problem(with: name) != nil)
        #expect(throws: P2PError.self) { try PeerName(name) }
    }

    @Test(
        "ordinary names pass",
        arguments: ["laptop", "build-01.lab", "Ana's Mac", "ワークステーション", String(repeating: "x", count: 64)]
    )
    func accepted(name: String) throws {
        #expect(try PeerName(name).value == name)
    }

    @Test("a host name is made valid, never refused")
    func fromHostName() {
        #expect(PeerName.fromHostName("box-7").value == "box-7")
        #expect(PeerName.fromHostName("bad\u{202E}name\n").value == "badname")
        #expect(PeerName.fromHostName("").value == "peer")
        #expect(PeerName.fromHostName(String(repeating: "é", count: 40)).value.utf8.count <= PeerName.maximumLength)
    }
}
