import Foundation
import Logging
import NIOCore
import Testing
import _NIOFileSystem

@testable import P2P

@Suite("A downloader that subscribes to a relayer late, over loopback", .timeLimit(.minutes(1)))
struct LateSubscriberTests {
    static let chunk = 256 * 1024

    /// A transfer server on 127.0.0.1 for `responder`, known in `table` as `id`, for `body`.
    func serving<Result: Sendable>(
        _ responder: SwarmResponder,
        as id: PeerID,
        in table: PeerTable,
        _ body: @Sendable () async throws -> Result
    ) async throws -> Result {
        let server = try await TransferServer.loopback(responder, logger: StorageFixture.logger)
        try table.recordLoopbackPeer(id, transferPort: server.port)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    @Test("chunks a relayer forwarded before the subscription are fetched from it at once, not after the grace")
    func fetchesWhatItMissedAtOnce() async throws {
        let seederFolder = try StorageFixture()
        let relayerFolder = try StorageFixture()
        let downloaderFolder = try StorageFixture()
        defer { for folder in [seederFolder, relayerFolder, downloaderFolder] { folder.remove() } }
        let data = try seederFolder.share("late.bin", size: 6 * Self.chunk)
        let logger = StorageFixture.logger

        // The seeder holds the whole file and sends slowly: 1 MiB/s, a quarter second a chunk.
        let seederStore = try await ChunkStore.open(configuration: seederFolder.configuration(), logger: logger)
        let id = try #require(await seederStore.inventory().first?.id)
        let manifest = try #require(await seederStore.manifest(for: id))
        // The relayer is downloading it too: it was handed chunks 1–4 and forwarded them
        // before this downloader subscribed.
        let relayerStore = try await ChunkStore.open(configuration: relayerFolder.configuration(), logger: logger)
        let relayerFile = try await relayerStore.beginDownload(manifest)
        let relayerHub = RelayHub()
        relayerHub.beginDownload(of: id, chunkCount: manifest.chunkCount)
        for index in 1...4 {
            let bytes = try #require(try await seederStore.readChunk(id, index: index))
            _ = try await relayerFile.write(bytes, chunk: index)
            relayerHub.forward(bytes, chunk: index, of: id)
        }
        let downloaderStore = try await ChunkStore.open(configuration: downloaderFolder.configuration(), logger: logger)

        let table = PeerTable()
        let seederID = PeerID(high: 0, low: 1)
        let relayerID = PeerID(high: 0, low: 2)
        let seeder = SwarmResponder(
            store: seederStore,
            statistics: TransferStatistics(),
            uploadLimiter: RateLimiter(bytesPerSecond: 1 << 20),
            logger: logger
        )
        let relayer = SwarmResponder(
            store: relayerStore,
            statistics: TransferStatistics(),
            relayHub: relayerHub,
            logger: logger
        )
        // A grace far longer than the download: without the notice, nothing the relayer
        // holds would be asked of it.
        let configuration = {
            var configuration = Downloader.Configuration()
            configuration.relayGrace = .seconds(60)
            return configuration
        }()
        let result = try await self.serving(seeder, as: seederID, in: table) {
            try await self.serving(relayer, as: relayerID, in: table) {
                try await Downloader(
                    store: downloaderStore,
                    table: table,
                    configuration: configuration,
                    settings: TransferSettings(logger: logger)
                )
                .download(name: "late.bin", timeout: .seconds(30))
            }
        }
        #expect((result.bytesFromPeer[relayerID] ?? 0) > 0, "nothing came from the relayer: \(result.bytesFromPeer)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: result.path.string)) == Data(data))
        for store in [seederStore, relayerStore, downloaderStore] { await store.close() }
    }

    @Test("a chunk forwarded but not yet written is served once the write lands, not answered 'not held'")
    func forwardedChunkWaitsForItsWrite() async throws {
        let seederFolder = try StorageFixture()
        let relayerFolder = try StorageFixture()
        defer { for folder in [seederFolder, relayerFolder] { folder.remove() } }
        _ = try seederFolder.share("racing.bin", size: 4 * Self.chunk)
        let logger = StorageFixture.logger
        let seederStore = try await ChunkStore.open(configuration: seederFolder.configuration(), logger: logger)
        let id = try #require(await seederStore.inventory().first?.id)
        let manifest = try #require(await seederStore.manifest(for: id))
        let relayerStore = try await ChunkStore.open(configuration: relayerFolder.configuration(), logger: logger)
        let relayerFile = try await relayerStore.beginDownload(manifest)
        let hub = RelayHub()
        hub.beginDownload(of: id, chunkCount: manifest.chunkCount)
        // Chunk 2 is verified and forwarded; its write has not happened yet. Chunk 3 was
        // forwarded and its write never comes (a write that failed).
        let bytes = try #require(try await seederStore.readChunk(id, index: 2))
        hub.forward(bytes, chunk: 2, of: id)
        hub.forward(bytes, chunk: 3, of: id)
        let server = try await TransferServer.loopback(
            SwarmResponder(store: relayerStore, statistics: TransferStatistics(), relayHub: hub, logger: logger),
            logger: logger
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            try await TransferClient.connect(to: address, settings: .test, answerTimeout: .seconds(5)) { session in
                try await session.send(.chunkRequest(id, chunk: 2))
                // The write lands while the request waits.
                try await Task.sleep(for: .milliseconds(30))
                #expect(try await relayerFile.write(bytes, chunk: 2))
                guard case .chunkData(id, 2, let served) = try await session.receive() else {
                    Issue.record("expected chunk 2's data")
                    return
                }
                #expect(served == bytes)
                // The wait is bounded: a write that never comes is answered "not held".
                try await session.send(.chunkRequest(id, chunk: 3))
                guard case .failure(id, 3, .chunkNotHeld, _) = try await session.receive() else {
                    Issue.record("expected chunk 3 'not held'")
                    return
                }
            }
        }
        for store in [seederStore, relayerStore] { await store.close() }
    }
}
