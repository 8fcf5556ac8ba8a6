import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import P2P

/// Connections that trickle, hold unfinished frames or fill the table, against a real
/// server on loopback: what they cost it and whether honest peers are still served.
@Suite("A transfer server against trickling and unfinished frames, over loopback", .timeLimit(.minutes(2)))
struct HostileConnectionTests {
    /// Runs a server on 127.0.0.1 with one shared file, and `body` against it.
    func withServer(
        limits: TransferServer.Limits,
        networkKey: NetworkKey? = nil,
        _ body: @Sendable (TransferServer, SocketAddress) async throws -> Void
    ) async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        try fixture.share("served.bin", size: 100_000)
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        let server = try await TransferServer.bind(
            host: "127.0.0.1",
            port: 0,
            settings: TransferSettings(networkKey: networkKey, logger: StorageFixture.logger),
            limits: limits,
            responder: SwarmResponder(store: store, statistics: TransferStatistics(), logger: StorageFixture.logger)
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            try await body(server, address)
        }
        await store.close()
    }

    /// A connection that sends raw bytes and ignores what comes back, from a chosen
    /// loopback address (each is a different peer to the server).
    final class RawConnection: Sendable {
        let channel: any Channel
        let opened = ContinuousClock.now
        private let closedAt = Mutex<ContinuousClock.Instant?>(nil)

        init(from source: String, to address: SocketAddress) async throws {
            self.channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .bind(to: try SocketAddress(ipAddress: source, port: 0))
                .connect(to: address)
                .get()
            self.channel.closeFuture.whenComplete { _ in self.closedAt.withLock { $0 = .now } }
        }

        func send(_ bytes: ByteBuffer) async {
            try? await self.channel.writeAndFlush(bytes)
        }

        /// How long after it was opened the server closed it; `nil` while it is open.
        var closedAfter: Duration? { self.closedAt.withLock { $0 }.map { $0 - self.opened } }
        var isClosed: Bool { self.closedAfter != nil }
    }

    /// The first bytes of a frame whose payload declares `length` bytes.
    static func frameStart(length: Int, type: FrameType = .pushedChunk, bytes: Int) -> ByteBuffer {
        var generator = SeededGenerator(seed: UInt64(length))
        let frame = generator.frame(payloadLength: length, type: type)
        return frame.encoded().getSlice(at: 0, length: min(bytes, Frame.headerLength + length))!
    }

    /// Whether the server answers an honest inventory request from 127.0.0.1.
    static func honestInventory(at address: SocketAddress) async -> Bool {
        ((try? await TransferClient.connect(to: address, settings: .test, answerTimeout: .seconds(5)) { session in
            try await session.inventory().count
        }) ?? 0) == 1
    }

    @Test("a drip flood that fills the table does not lock out an honest peer: the idlest connection is shed")
    func dripFloodSheds() async throws {
        let limits = TransferServer.Limits(maximumConnections: 16, maximumConnectionsPerAddress: 4)
        try await self.withServer(limits: limits) { server, address in
            var flood: [RawConnection] = []
            for host in 2...5 {
                for _ in 0..<4 { flood.append(try await RawConnection(from: "127.0.0.\(host)", to: address)) }
            }
            for connection in flood { await connection.send(ByteBuffer(bytes: [0])) }
            let full = await poll(timeout: .seconds(5)) { server.connectionStatistics.open == 16 }
            #expect(full, "\(server.connectionStatistics)")
            // A fifth connection from a flooding address is still refused.
            let over = try await RawConnection(from: "127.0.0.2", to: address)
            #expect(await poll(timeout: .seconds(5)) { over.isClosed })
            // The honest peer gets in on two connections at once; each time a drip
            // connection makes room.
            let both = try await TransferClient.connect(to: address, settings: .test, answerTimeout: .seconds(5)) {
                first in
                let entries = try await first.inventory().count
                return entries + (await Self.honestInventory(at: address) ? 1 : 0)
            }
            #expect(both == 2)
            let statistics = server.connectionStatistics
            #expect(statistics.shed >= 2 && statistics.refused >= 1, "\(statistics)")
            #expect(flood.filter(\.isClosed).count >= 2)
            for connection in flood { connection.channel.close(promise: nil) }
        }
    }

    @Test("idle means no complete frame: a connection that trickles bytes is closed after the idle timeout")
    func trickleIsIdle() async throws {
        let limits = TransferServer.Limits(idleTimeout: .seconds(1), frameTimeout: .seconds(60))
        try await self.withServer(limits: limits) { _, address in
            let connection = try await RawConnection(from: "127.0.0.2", to: address)
            // A byte every 100 ms of a 412-byte frame: bytes all the time, never a frame.
            let bytes = Self.frameStart(length: 400, type: .manifest, bytes: 412)
            for index in 0..<40 where !connection.isClosed {
                await connection.send(bytes.getSlice(at: index, length: 1)!)
                try await Task.sleep(for: .milliseconds(100))
            }
            let closedAfter = try #require(connection.closedAfter, "a trickle of 4 s kept the connection")
            #expect(closedAfter >= .milliseconds(900) && closedAfter < .seconds(3), "closed after \(closedAfter)")
        }
    }

    @Test("a frame not whole within the frame timeout of its first byte closes the connection")
    func frameTimeout() async throws {
        let limits = TransferServer.Limits(idleTimeout: .seconds(60), frameTimeout: .seconds(1))
        try await self.withServer(limits: limits) { _, address in
            let connection = try await RawConnection(from: "127.0.0.2", to: address)
            await connection.send(TransferMessage.inventoryRequest.frame().encoded())
            let started = ContinuousClock.now
            // Then 64 KiB of a 1 MiB push, and a byte every 100 ms.
            let bytes = Self.frameStart(length: 1 << 20, bytes: 128 << 10)
            await connection.send(bytes.getSlice(at: 0, length: 64 << 10)!)
            for index in 0..<40 where !connection.isClosed {
                await connection.send(bytes.getSlice(at: (64 << 10) + index, length: 1)!)
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(connection.isClosed, "a frame trickled for 4 s")
            let waited = try #require(connection.closedAfter) - (started - connection.opened)
            #expect(waited >= .milliseconds(900) && waited < .seconds(3), "closed after \(waited)")
        }
    }

    @Test("with a key, a large frame before the handshake is refused from its header, not buffered")
    func oversizedBeforeHandshake() async throws {
        let key = try NetworkKey(secret: "hostile review")
        try await self.withServer(limits: TransferServer.Limits(), networkKey: key) { server, address in
            var connections: [RawConnection] = []
            for host in 2...9 {
                let connection = try await RawConnection(from: "127.0.0.\(host)", to: address)
                await connection.send(Self.frameStart(length: 16 << 20, type: .hello, bytes: 256 << 10))
                connections.append(connection)
            }
            // At once, not at the 5 s handshake timeout.
            let closed = await poll(timeout: .seconds(2)) { connections.allSatisfy(\.isClosed) }
            #expect(closed, "\(connections.filter(\.isClosed).count) of 8 closed")
            #expect(server.connectionStatistics.unfinishedFrameBytes == 0)
            // A member still gets in.
            let served = try await TransferClient.connect(
                to: address,
                settings: .test(key: key),
                answerTimeout: .seconds(5)
            ) {
                session in try await session.inventory().count
            }
            #expect(served == 1)
        }
    }

    @Test("unfinished frames across connections stay within the shared budget; requests are still answered")
    func sharedBudget() async throws {
        let limits = TransferServer.Limits(unfinishedFrameBudget: 4 << 20)
        try await self.withServer(limits: limits) { server, address in
            var connections: [RawConnection] = []
            for host in 2...9 {
                let connection = try await RawConnection(from: "127.0.0.\(host)", to: address)
                await connection.send(TransferMessage.inventoryRequest.frame().encoded())
                await connection.send(Self.frameStart(length: 16 << 20, bytes: 1 << 20))
                connections.append(connection)
            }
            // 8 MiB sent in unfinished frames, 4 MiB of budget: about half are closed.
            let settled = await poll(timeout: .seconds(5)) {
                server.connectionStatistics.closedOverBudget >= 4
            }
            let statistics = server.connectionStatistics
            #expect(settled, "\(statistics)")
            #expect(statistics.unfinishedFrameBytes <= 4 << 20, "\(statistics)")
            let seenClosed = await poll(timeout: .seconds(5)) {
                connections.filter(\.isClosed).count == statistics.closedOverBudget
            }
            #expect(seenClosed, "\(connections.filter(\.isClosed).count) closed, \(statistics)")
            #expect(await Self.honestInventory(at: address))
            for connection in connections { connection.channel.close(promise: nil) }
            let released = await poll(timeout: .seconds(5)) {
                server.connectionStatistics.unfinishedFrameBytes == 0
            }
            #expect(released, "\(server.connectionStatistics)")
        }
    }
}
