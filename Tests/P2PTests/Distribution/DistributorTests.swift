import NIOCore
import NIOPosix
import P2P
import Synchronization
import Testing

/// A distribution round contacts a bounded sample of the table, not every peer in it.
@Suite("Distributor", .timeLimit(.minutes(1)))
struct DistributorTests {
    /// Counts the TCP connections it accepts and closes each at once.
    final class CountingListener: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let accepted = Mutex(0)

        func channelActive(context: ChannelHandlerContext) {
            self.accepted.withLock { $0 += 1 }
            context.close(promise: nil)
        }
    }

    @Test("a round with 300 serving peers in the table opens at most 8 connections")
    func roundContactsASample() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        try fixture.share("spread.bin", size: 300_000)
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        let listener = CountingListener()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(listener) }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let port = try #require(server.localAddress?.port)
        // Forged entries, all naming the listener: what a flood of alives leaves behind.
        let table = PeerTable(limits: PeerRoster.Limits(maximumPeers: 1024, maximumPeersPerAddress: 1024))
        for low in 0..<300 as Range<UInt64> {
            table.record(
                Announcement(
                    kind: .alive,
                    peerID: PeerID(high: 77, low: low),
                    transferPort: UInt16(port),
                    announceIntervalMilliseconds: 60_000
                ),
                from: try SocketAddress(ipAddress: "127.0.0.1", port: 20_000 + Int(low))
            )
        }
        #expect(table.servingPeers().count == 300)
        let distributor = Distributor(
            store: store,
            table: table,
            configuration: Distributor.Configuration(),
            statistics: TransferStatistics(),
            settings: TransferSettings(logger: StorageFixture.logger)
        )
        let pushed = try await distributor.pushRound(to: table.servingPeers()[0])
        #expect(pushed == 0)
        let connections = listener.accepted.withLock { $0 }
        #expect(connections >= 1 && connections <= Distributor.Configuration.defaultMaximumPeersPerRound)
        try await server.close()
        await store.close()
    }
}
