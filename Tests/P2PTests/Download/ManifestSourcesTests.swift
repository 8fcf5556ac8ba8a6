import NIOCore
import Testing

@testable import P2P

@Suite("Downloader.manifestSources")
struct ManifestSourcesTests {
    func peer(_ low: UInt64) throws -> KnownPeer {
        .fixture(low, at: try SocketAddress(ipAddress: "198.18.0.\(low)", port: 4000))
    }

    @Test("the manifest is asked of whole-file holders first, then of peers downloading it, then of the rest")
    func holdersFirst() throws {
        let peers = try (1...6).map { try self.peer($0) }
        var partial = ChunkBitmap(count: 4)
        partial.insert(2)
        let holders: [PeerID: ChunkBitmap] = [
            peers[4].id: .full(count: 4),
            peers[1].id: partial,
            peers[3].id: ChunkBitmap(count: 4),  // listed, nothing held yet: it has the manifest
            peers[5].id: .full(count: 4),
        ]
        let order = Downloader.manifestSources(peers, holders: holders).map(\.id.low)
        #expect(order == [5, 6, 2, 4, 1, 3])
        // With no holder known, the order is the table's.
        #expect(Downloader.manifestSources(peers, holders: [:]).map(\.id.low) == [1, 2, 3, 4, 5, 6])
    }
}
