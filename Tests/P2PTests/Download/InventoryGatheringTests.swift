import Foundation
import NIOCore
import NIOPosix
import Testing
import _NIOFileSystem

@testable import P2P

/// `Downloader.inventories(of: enough:grace:, settings: .test)` over loopback: a name lookup must not wait
/// for the slowest peer once the answers received settle it, and must still count every
/// peer that answers within the grace.
@Suite("Downloader.inventories, early end", .timeLimit(.minutes(1)))
struct InventoryGatheringTests {
    /// Runs `body` with the address of a listener on 127.0.0.1 that accepts connections
    /// and never answers on them: a peer stuck in its own start, or hung.
    func withSilentListener<Result>(_ body: (SocketAddress) async throws -> Result) async throws -> Result {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
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

    /// Runs `body` with the address of a peer that answers every inventory request with an
    /// empty inventory, `delay` late.
    func withSlowPeer<Result: Sendable>(
        answeringAfter delay: Duration,
        _ body: (SocketAddress) async throws -> Result
    ) async throws -> Result {
        try await TransferServer.withLoopback(InventoryAnswering(delay: delay), body)
    }

    /// Runs `body` with the address of a listener on 127.0.0.1 whose accept queue is full,
    /// so that the kernel drops every new SYN: a connect there hangs, like one to a host
    /// that is gone.
    func withUnreachableAddress<Result>(_ body: (SocketAddress) async throws -> Result) async throws -> Result {
        // A backlog of 0 holds one connection, and a listener that does not read never
        // takes it off the queue: one filler connection makes it full.
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 0)
            .serverChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let address = try #require(listener.localAddress)
        let filler = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: address).get()
        let result: Result
        do {
            result = try await body(address)
        } catch {
            try? await filler.close()
            try? await listener.close()
            throw error
        }
        try await filler.close()
        try await listener.close()
        return result
    }

    /// Asks the peer at `first` (id 1) and the one at `second` (id 2) for their
    /// inventories, and times the call.
    func gather(
        from first: SocketAddress,
        and second: SocketAddress,
        timeout: Duration,
        enough: (([(KnownPeer, [InventoryEntry])]) -> Bool)?,
        grace: Duration
    ) async -> (answers: [(KnownPeer, [InventoryEntry])], elapsed: Duration) {
        let started = ContinuousClock.now
        let answers = await Downloader.inventories(
            of: [KnownPeer.fixture(1, at: first), KnownPeer.fixture(2, at: second)],
            timeout: timeout,
            enough: enough,
            grace: grace,
            settings: TransferSettings(logger: StorageFixture.logger)
        )
        return (answers, ContinuousClock.now - started)
    }

    @Test("once the answers in are enough, a peer that never answers is given up after the grace, not the timeout")
    func silentPeerGivenUp() async throws {
        try await TransferServerTests().withServer { address, id, _ in
            try await self.withSilentListener { silent in
                let (answers, elapsed) = await self.gather(
                    from: address,
                    and: silent,
                    timeout: .seconds(20),
                    enough: { !$0.isEmpty },
                    grace: .milliseconds(300)
                )
                #expect(answers.map(\.0.id) == [PeerID(high: 0, low: 1)])
                #expect(answers.first?.1.map(\.id) == [id])
                // The silent peer had its grace, and not the 20 s timeout.
                #expect(elapsed >= .milliseconds(300))
                #expect(elapsed < .seconds(10))
            }
        }
    }

    @Test("a connect that hangs (the host is gone) is given up after the grace too")
    func hangingConnectGivenUp() async throws {
        try await TransferServerTests().withServer { address, _, _ in
            try await self.withUnreachableAddress { unreachable in
                // The address really does not answer: a connect there times out.
                await #expect(throws: (any Error).self) {
                    try await TransferClient.connect(
                        to: unreachable,
                        settings: .test,
                        connectTimeout: .milliseconds(300)
                    ) { _ in }
                }
                let (answers, elapsed) = await self.gather(
                    from: address,
                    and: unreachable,
                    timeout: .seconds(20),
                    enough: { !$0.isEmpty },
                    grace: .milliseconds(100)
                )
                #expect(answers.map(\.0.id) == [PeerID(high: 0, low: 1)])
                // NIO's connect ignores cancellation; without closing the channel this
                // waited for the whole connect timeout (here the 20 s timeout).
                #expect(elapsed < .seconds(10))
            }
        }
    }

    @Test("a peer that answers within the grace is counted, and the grace is not waited out once all are in")
    func slowPeerWithinGraceCounted() async throws {
        try await TransferServerTests().withServer { address, _, _ in
            try await self.withSlowPeer(answeringAfter: .milliseconds(300)) { slow in
                let (answers, elapsed) = await self.gather(
                    from: address,
                    and: slow,
                    timeout: .seconds(20),
                    enough: { !$0.isEmpty },
                    grace: .seconds(8)
                )
                #expect(answers.map(\.0.id) == [PeerID(high: 0, low: 1), PeerID(high: 0, low: 2)])
                #expect(elapsed < .seconds(6))
            }
        }
    }

    @Test("a peer that answers after the grace is not counted")
    func slowPeerPastGraceNotCounted() async throws {
        try await TransferServerTests().withServer { address, _, _ in
            try await self.withSlowPeer(answeringAfter: .seconds(5)) { slow in
                let (answers, elapsed) = await self.gather(
                    from: address,
                    and: slow,
                    timeout: .seconds(20),
                    enough: { !$0.isEmpty },
                    grace: .milliseconds(200)
                )
                #expect(answers.map(\.0.id) == [PeerID(high: 0, low: 1)])
                #expect(elapsed < .seconds(4))
            }
        }
    }

    @Test("without `enough`, or while it stays false, every peer is waited for, up to the timeout")
    func waitsForEveryPeerUnlessEnough() async throws {
        try await TransferServerTests().withServer { address, _, _ in
            try await self.withSilentListener { silent in
                for enough in [nil, { (_: [(KnownPeer, [InventoryEntry])]) in false }] {
                    let (answers, elapsed) = await self.gather(
                        from: address,
                        and: silent,
                        timeout: .milliseconds(500),
                        enough: enough,
                        grace: .milliseconds(10)
                    )
                    #expect(answers.map(\.0.id) == [PeerID(high: 0, low: 1)])
                    #expect(elapsed >= .milliseconds(500))
                }
            }
        }
    }

    @Test("no peers, no answers, no wait")
    func noPeers() async {
        let answers = await Downloader.inventories(
            of: [],
            timeout: .seconds(20),
            enough: { _ in true },
            settings: TransferSettings(logger: StorageFixture.logger)
        )
        #expect(answers.isEmpty)
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
        let outcome: Result<DownloadResult, any Error>
        do {
            outcome = .success(
                try await self.withSilentListener { silent in
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
                        try await Downloader(
                            store: downloaderStore,
                            table: table,
                            configuration: configuration,
                            settings: TransferSettings(logger: logger)
                        )
                        .download(name: "wanted.bin", timeout: .seconds(30))
                    }
                }
            )
        } catch {
            outcome = .failure(error)
        }
        for store in [seederStore, downloaderStore] { await store.close() }
        let result = try outcome.get()
        #expect(try Data(contentsOf: URL(fileURLWithPath: result.path.string)) == Data(data))
    }
}
