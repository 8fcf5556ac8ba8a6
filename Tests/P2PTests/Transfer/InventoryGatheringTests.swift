import Foundation
import NIOCore
import NIOPosix
import Testing
import _NIOFileSystem

@testable import P2P

/// `Downloader.inventories(of:enough:grace:)` over loopback: a name lookup must not wait
/// for the slowest peer once the answers in settle it.
@Suite("Downloader.inventories, early end", .timeLimit(.minutes(1)))
struct InventoryGatheringTests {
    /// Runs `body` with the address of a listener on 127.0.0.1 that accepts connections
    /// and never answers on them: a peer stuck in its own start, or hung.
    func withSilentListener<Result>(_ body: (SocketAddress) async throws -> Result) async throws -> Result {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { _ in MultiThreadedEventLoopGroup.singleton.any().makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let result: Result
        do {
            result = try await body(try #require(listener.localAddress))
        } catch {
            try? await listener.close()
            throw error
        }
        try await listener.close()
        return result
    }

    @Test("once the answers in are enough, a peer that never answers is given up after the grace, not the timeout")
    func silentPeerGivenUp() async throws {
        try await TransferServerTests().withServer { address, id, _ in
            try await self.withSilentListener { silent in
                let started = ContinuousClock.now
                let answers = await Downloader.inventories(
                    of: [KnownPeer.fixture(1, at: address), KnownPeer.fixture(2, at: silent)],
                    timeout: .seconds(120),
                    enough: { !$0.isEmpty },
                    grace: .milliseconds(50),
                    logger: StorageFixture.logger
                )
                #expect(answers.map(\.0.id) == [PeerID(high: 0, low: 1)])
                #expect(answers.first?.1.map(\.id) == [id])
                // Waiting for the silent peer would take the whole timeout.
                #expect(ContinuousClock.now - started < .seconds(60))
            }
        }
    }

    @Test("without `enough`, every peer is waited for, up to the timeout")
    func waitsForEveryPeerByDefault() async throws {
        try await TransferServerTests().withServer { address, _, _ in
            try await self.withSilentListener { silent in
                let started = ContinuousClock.now
                let answers = await Downloader.inventories(
                    of: [KnownPeer.fixture(1, at: address), KnownPeer.fixture(2, at: silent)],
                    timeout: .milliseconds(500),
                    logger: StorageFixture.logger
                )
                #expect(answers.map(\.0.id) == [PeerID(high: 0, low: 1)])
                #expect(ContinuousClock.now - started >= .milliseconds(500))
            }
        }
    }

    @Test("peers that answer within the grace are all counted")
    func answersWithinGraceCounted() async throws {
        try await TransferServerTests().withServer { first, _, _ in
            try await TransferServerTests().withServer { second, _, _ in
                let answers = await Downloader.inventories(
                    of: [KnownPeer.fixture(1, at: first), KnownPeer.fixture(2, at: second)],
                    timeout: .seconds(120),
                    enough: { !$0.isEmpty },
                    grace: .seconds(60),
                    logger: StorageFixture.logger
                )
                #expect(answers.map(\.0.id) == [PeerID(high: 0, low: 1), PeerID(high: 0, low: 2)])
            }
        }
    }

    @Test("a download's name lookup goes on without the inventory of a peer that never answers")
    func lookupDoesNotWaitForSilentPeer() async throws {
        let seederFolder = try StorageFixture()
        let downloaderFolder = try StorageFixture()
        defer { for folder in [seederFolder, downloaderFolder] { folder.remove() } }
        let data = try seederFolder.share("wanted.bin", size: 300_000)
        let logger = StorageFixture.logger
        let seederStore = try await ChunkStore.open(configuration: seederFolder.configuration(), logger: logger)
        let downloaderStore = try await ChunkStore.open(configuration: downloaderFolder.configuration(), logger: logger)
        let table = PeerTable()
        let seeder = SwarmResponder(store: seederStore, statistics: TransferStatistics(), logger: logger)
        // Far past the suite's time limit: a lookup that waited for the silent peer fails.
        let configuration = {
            var configuration = Downloader.Configuration()
            configuration.inventoryTimeout = .seconds(120)
            return configuration
        }()
        let result = try await self.withSilentListener { silent in
            table.record(
                Announcement(
                    kind: .start,
                    peerID: PeerID(high: 0, low: 2),
                    transferPort: UInt16(try #require(silent.port)),
                    announceIntervalMilliseconds: 60_000
                ),
                from: try SocketAddress(ipAddress: "127.0.0.1", port: 9)
            )
            return try await LateSubscriberTests().serving(seeder, as: PeerID(high: 0, low: 1), in: table) {
                try await Downloader(store: downloaderStore, table: table, configuration: configuration, logger: logger)
                    .download(name: "wanted.bin", timeout: .seconds(30))
            }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: result.path.string)) == Data(data))
        for store in [seederStore, downloaderStore] { await store.close() }
    }
}
