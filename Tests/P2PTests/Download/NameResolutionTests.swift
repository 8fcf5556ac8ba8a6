import NIOCore
import NIOPosix
import Testing

@testable import P2P

/// Which file a name means, and what asking the swarm about it may cost: the choice is
/// never made by a count of peer ids (free to make up), and inventories are bounded in
/// size, in number asked at once, and in memory kept.
@Suite("Name resolution and inventory bounds", .timeLimit(.minutes(1)))
struct NameResolutionTests {
    private static func file(_ low: UInt8, name: String, holders: Int) throws -> SwarmFile {
        var bitmap = ChunkBitmap(count: 1)
        bitmap.insert(0)
        var holderMap: [PeerID: ChunkBitmap] = [:]
        for holder in 0..<holders { holderMap[PeerID(high: UInt64(low), low: UInt64(holder))] = bitmap }
        return SwarmFile(
            id: FileID(bytes: [UInt8](repeating: low, count: 32))!,
            name: try FileName(name),
            size: 10,
            chunkCount: 1,
            holders: holderMap,
            availableChunks: 1
        )
    }

    @Test("a lookup is settled by one file of the name that some peer holds whole, not by partial copies alone")
    func lookupWaitsForWholeHolder() throws {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        let id = FileID(bytes: [UInt8](repeating: 3, count: 32))!
        func entry(_ name: String, held: Int) throws -> InventoryEntry {
            var bitmap = ChunkBitmap(count: 4)
            for index in 0..<held { bitmap.insert(index) }
            return InventoryEntry(
                id: id,
                name: try FileName(name),
                size: 4 * 262_144,
                chunkSize: 262_144,
                bitmap: bitmap
            )
        }
        let downloader = (KnownPeer.fixture(1, at: address), [try entry("crowd.bin", held: 1)])
        let seeder = (KnownPeer.fixture(2, at: address), [try entry("crowd.bin", held: 4)])
        let settles = { Downloader.settlesLookup($0, name: "crowd.bin", idPrefix: nil) }
        #expect(!settles([downloader]), "another downloader's partial copy does not settle it")
        #expect(settles([downloader, seeder]))
        #expect(settles([seeder]))
        #expect(!Downloader.settlesLookup([seeder], name: "other.bin", idPrefix: nil))
    }

    @Test("different files of one name are never chosen between by how many peer ids hold each")
    func sameNameIsAlwaysAmbiguous() throws {
        let honest = try Self.file(1, name: "report.pdf", holders: 1)
        let forged = try Self.file(2, name: "report.pdf", holders: 2)
        #expect {
            _ = try Downloader.resolve(name: "report.pdf", idPrefix: nil, in: [honest, forged])
        } throws: { error in
            let error = error as? P2PError
            return error?.code == .ambiguous && error?.message.contains("--id") == true
                && error?.message.contains(honest.id.short) == true && error?.message.contains(forged.id.short) == true
        }
        let picked = try Downloader.resolve(
            name: "report.pdf",
            idPrefix: String(honest.id.short),
            in: [honest, forged]
        )
        #expect(picked.id == honest.id)
    }

    /// Runs `body` with the address of a transfer server whose inventory answers come from
    /// `responder`. Every test peer shares 127.0.0.1: there is room for all of them at
    /// once, and for the connections still closing as the next ones open.
    private func withServer<Result: Sendable>(
        _ responder: some TransferResponder,
        _ body: (SocketAddress) async throws -> Result
    ) async throws -> Result {
        try await TransferServer.withLoopback(
            responder,
            limits: TransferServer.Limits(maximumConnections: 1024, maximumConnectionsPerAddress: 1024),
            body
        )
    }

    @Test("an inventory over the size limit is refused before it is buffered; the others are kept")
    func oversizedInventoryIsRefused() async throws {
        // About 8 MiB of entries, twice the limit.
        let entries = try (0..<90_000).map { index in
            var id = [UInt8](repeating: 0, count: 32)
            withUnsafeBytes(of: UInt32(index).bigEndian) { id.replaceSubrange(0..<4, with: $0) }
            return InventoryEntry(
                id: FileID(bytes: id)!,
                name: try FileName("file-\(index)-" + String(repeating: "x", count: 30)),
                size: 1,
                chunkSize: ChunkSizing.baseChunkSize,
                bitmap: .full(count: 1)
            )
        }
        let huge = TransferMessage.inventory(entries).frame()
        #expect(huge.payload.readableBytes > Downloader.maximumInventoryBytes)
        let answers = try await self.withServer(InventoryAnswering(frame: huge)) { liar in
            try await self.withServer(InventoryAnswering()) { honest in
                await Downloader.inventories(
                    of: [KnownPeer.fixture(1, at: liar), KnownPeer.fixture(2, at: honest)],
                    settings: TransferSettings(logger: StorageFixture.logger)
                )
            }
        }
        #expect(answers.map(\.0.id) == [PeerID(high: 0, low: 2)])
    }

    @Test("no more than the set number of peers are asked at once, and every one is asked")
    func boundedConcurrency() async throws {
        let counter = ConcurrencyCounter()
        let peerCount = Downloader.maximumConcurrentInventories + 8
        let answers = try await self.withServer(InventoryAnswering(delay: .milliseconds(50), counter: counter)) {
            address in
            await Downloader.inventories(
                of: (1...peerCount).map { KnownPeer.fixture(UInt64($0), at: address) },
                settings: TransferSettings(logger: StorageFixture.logger)
            )
        }
        #expect(answers.count == peerCount)
        #expect(counter.peak <= Downloader.maximumConcurrentInventories)
        #expect(counter.peak > 1)
    }
}
