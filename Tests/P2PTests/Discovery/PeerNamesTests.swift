import NIOCore
import Testing

@testable import P2P

/// How peers are shown by name and found by what people type.
@Suite("PeerNames")
struct PeerNamesTests {
    static func peer(_ high: UInt64, _ name: String?) -> KnownPeer {
        var peer = KnownPeer.fixture(1, at: try! SocketAddress(ipAddress: "198.18.0.\(high)", port: 7000))
        peer.id = PeerID(high: high << 56, low: 1)
        peer.name = name.map { try! PeerName($0) }
        return peer
    }

    static let peers = [peer(1, "build"), peer(2, "laptop"), peer(3, "laptop"), peer(4, nil)]

    @Test("a unique name is shown as is; a shared one with the short id; none as the short id")
    func labels() {
        let names = PeerNames(Self.peers)
        #expect(names.label(Self.peers[0].id) == "build")
        #expect(names.label(Self.peers[1].id) == "laptop#\(Self.peers[1].id.short)")
        #expect(names.label(Self.peers[2].id) == "laptop#\(Self.peers[2].id.short)")
        #expect(names.label(Self.peers[3].id) == Self.peers[3].id.short)
    }

    @Test("a peer is found by name, by its label, or by id digits; a shared name is ambiguous")
    func find() throws {
        let names = PeerNames(Self.peers)
        #expect(try names.find("build").id == Self.peers[0].id)
        #expect(try names.find("laptop#\(Self.peers[2].id.short)").id == Self.peers[2].id)
        #expect(try names.find(String(Self.peers[3].id.description.prefix(3))).id == Self.peers[3].id)
        #expect(throws: P2PError.self) { try names.find("laptop") }
        #expect(throws: P2PError.self) { try names.find("nobody") }
    }
}
