import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import P2P

@Suite("TransferServer with SwarmResponder, over loopback")
struct TransferServerTests {
    /// Runs a server on 127.0.0.1 with one shared file, and `body` against it.
    func withServer(
        size: Int = 600_000,
        limits: TransferServer.Limits = TransferServer.Limits(),
        pushAllowance: PushAllowance = PushAllowance(),
        statistics: TransferStatistics = TransferStatistics(),
        relayHub: RelayHub = RelayHub(),
        _ body: @Sendable (SocketAddress, FileID, [UInt8]) async throws -> Void
    ) async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let data = try fixture.share("served.bin", size: size)
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        let id = try #require(await store.inventory().first?.id)
        let server = try await TransferServer.bind(
            host: "127.0.0.1",
            port: 0,
            settings: TransferSettings(logger: StorageFixture.logger),
            limits: limits,
            responder: SwarmResponder(
                store: store,
                statistics: statistics,
                pushAllowance: pushAllowance,
                relayHub: relayHub,
                logger: StorageFixture.logger
            )
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            try await body(address, id, data)
        }
        await store.close()
    }

    @Test("inventory, manifest and pipelined chunk requests")
    func servesChunks() async throws {
        try await self.withServer { address, id, data in
            try await TransferClient.connect(to: address, settings: .test) { session in
                let inventory = try await session.inventory()
                #expect(inventory.map(\.id) == [id])
                let fetched = try await session.manifest(for: id)
                let manifest = try #require(fetched)
                try await session.send((0..<manifest.chunkCount).map { .chunkRequest(id, chunk: $0) })
                var joined: [UInt8] = []
                for index in 0..<manifest.chunkCount {
                    guard case .chunkData(let got, let chunk, let bytes) = try await session.receive() else {
                        Issue.record("expected chunk data")
                        return
                    }
                    #expect(got == id && chunk == index)
                    #expect(manifest.verify(bytes, chunk: index))
                    joined += Array(bytes.readableBytesView)
                }
                #expect(joined == data)
                // A chunk past the end, and an unknown file, are answered with failures.
                try await session.send(.chunkRequest(id, chunk: manifest.chunkCount))
                guard case .failure(_, _, .chunkNotHeld, _) = try await session.receive() else {
                    Issue.record("expected a failure")
                    return
                }
                let unknown = FileID(bytes: [UInt8](repeating: 7, count: 32))!
                let missing = try await session.manifest(for: unknown)
                #expect(missing == nil)
            }
        }
    }

    /// Sends raw bytes on a new connection and waits for the server to close it.
    func serverCloses(_ bytes: [UInt8], at address: SocketAddress) async throws -> Bool {
        let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await raw.executeThenClose { inbound, outbound in
            // Nothing to send means only connecting: a refused connection may already be
            // closed here, and writing even an empty buffer to it would fail.
            if !bytes.isEmpty {
                try await outbound.write(ByteBuffer(bytes: bytes))
            }
            // Bounded: the server closes at once, or the 5 s timeout fails the test.
            try await withTimeout(.seconds(5), "the server to close") {
                for try await _ in inbound {}
            }
            return true
        }
    }

    @Test("a garbage frame closes that connection only; others are served as before")
    func garbageClosesOneConnection() async throws {
        try await self.withServer { address, id, _ in
            try await TransferClient.connect(to: address, settings: .test) { good in
                let before = try await good.inventory()
                #expect(before.map(\.id) == [id])
                // Unknown frame type 200.
                #expect(try await self.serverCloses([0, 0, 0, 4, 1, 200, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4], at: address))
                // A length of 4 GiB is refused from the header alone, before any payload.
                #expect(try await self.serverCloses([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 0, 0, 0, 0, 0, 0], at: address))
                // A bad checksum.
                #expect(try await self.serverCloses([0, 0, 0, 0, 1, 2, 0x12, 0x34, 0, 0, 0, 0], at: address))
                let after = try await good.inventory()
                #expect(after.map(\.id) == [id])
            }
        }
    }

    @Test("a connection that stalls mid-frame is closed after the idle timeout")
    func slowlorisClosed() async throws {
        let limits = TransferServer.Limits(idleTimeout: .seconds(1))
        try await self.withServer(limits: limits) { address, _, _ in
            let started = ContinuousClock.now
            // Three bytes of a header, then nothing.
            let closed = try await self.serverCloses([0, 0, 0], at: address)
            #expect(closed)
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(900) && waited < .seconds(5), "closed after \(waited)")
        }
    }

    @Test("connections over the per-address limit are refused; the others are served")
    func connectionLimit() async throws {
        let limits = TransferServer.Limits(maximumConnections: 100, maximumConnectionsPerAddress: 3)
        try await self.withServer(limits: limits) { address, id, _ in
            try await TransferClient.connect(to: address, settings: .test) { first in
                try await TransferClient.connect(to: address, settings: .test) { second in
                    try await TransferClient.connect(to: address, settings: .test) { third in
                        for index in 0..<3 {
                            let inventory: [InventoryEntry]
                            switch index {
                            case 0: inventory = try await first.inventory()
                            case 1: inventory = try await second.inventory()
                            default: inventory = try await third.inventory()
                            }
                            #expect(inventory.map(\.id) == [id])
                        }
                        // The fourth is closed at once, before any answer.
                        let refused = try await self.serverCloses([], at: address)
                        #expect(refused)
                        let again = try await first.inventory()
                        #expect(again.map(\.id) == [id])
                    }
                }
            }
            // Once the server has seen them close, new connections are served again.
            var served = false
            for _ in 0..<40 where !served {
                served =
                    (try? await TransferClient.connect(to: address, settings: .test) { session in
                        try await session.inventory().map(\.id) == [id]
                    }) ?? false
                if !served { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(served)
        }
    }

    @Test("pushed chunks: a valid one is kept and offered; junk closes the pusher's connection and is not kept")
    func pushedChunks() async throws {
        let source = try StorageFixture()
        defer { source.remove() }
        try source.share("spread.bin", size: 600_000, seed: 99)
        let origin = try await ChunkStore.open(configuration: source.configuration(), logger: StorageFixture.logger)
        let otherID = try #require(await origin.inventory().first?.id)
        let manifest = try #require(await origin.manifest(for: otherID))
        let chunk0 = try #require(try await origin.readChunk(otherID, index: 0))
        await origin.close()
        try await self.withServer { address, _, _ in
            // Junk: a chunk whose bytes do not match the manifest.
            var junk = chunk0
            junk.setInteger(UInt8(0xAA), at: junk.readerIndex)
            // Each connection opens with a small request, as a distributor's does: until its
            // first frame is whole, a connection may send no large one.
            let closed: Bool = try await TransferClient.connect(
                to: address,
                settings: .test,
                answerTimeout: .seconds(5)
            ) {
                session in
                _ = try await session.manifest(for: otherID)
                try await session.send([.manifest(manifest.encoded), .pushedChunk(otherID, chunk: 0, bytes: junk)])
                do {
                    _ = try await session.receive()
                    return false
                } catch {
                    return true
                }
            }
            #expect(closed)
            // A pushed chunk of a file the receiver never saw a manifest for: refused too.
            let unknown = FileID(bytes: [UInt8](repeating: 3, count: 32))!
            let refused: Bool = try await TransferClient.connect(
                to: address,
                settings: .test,
                answerTimeout: .seconds(5)
            ) { session in
                #expect(try await session.manifest(for: unknown) == nil)
                try await session.send(.pushedChunk(unknown, chunk: 0, bytes: chunk0))
                return (try? await session.receive()) == nil
            }
            #expect(refused)
            // A genuine push is kept and shows in the inventory.
            try await TransferClient.connect(to: address, settings: .test) { session in
                _ = try await session.manifest(for: otherID)
                try await session.send([.manifest(manifest.encoded), .pushedChunk(otherID, chunk: 0, bytes: chunk0)])
                // Answered in order, so once the inventory comes back the push was handled.
                let inventory = try await session.inventory()
                let entry = try #require(inventory.first { $0.id == otherID })
                #expect(entry.bitmap.indices == [0])
            }
        }
    }

    @Test("a relay request is told which chunks were forwarded before it, then gets what is forwarded after")
    func relayRequestLearnsWhatItMissed() async throws {
        let hub = RelayHub()
        let downloading = FileID(bytes: [UInt8](repeating: 5, count: 32))!
        let chunk = ByteBuffer(bytes: [UInt8](repeating: 0x5A, count: 1000))
        hub.beginDownload(of: downloading, chunkCount: 10)
        hub.forward(chunk, chunk: 1, of: downloading)
        hub.forward(chunk, chunk: 8, of: downloading)
        try await self.withServer(relayHub: hub) { address, id, _ in
            try await TransferClient.connect(to: address, settings: .test, answerTimeout: .seconds(5)) { session in
                try await session.send(.relayRequest(downloading))
                guard case .unrelayed(downloading, let bytes) = try await session.receive() else {
                    Issue.record("expected the chunks forwarded before the relay request")
                    return
                }
                #expect(ChunkBitmap(bytes: bytes, count: 10)?.indices == [1, 8])
                // The notice is written after the subscription is made: what is forwarded
                // now comes on this connection.
                hub.forward(chunk, chunk: 4, of: downloading)
                guard case .pushedChunk(downloading, 4, let relayed) = try await session.receive() else {
                    Issue.record("expected the chunk forwarded after the relay request")
                    return
                }
                #expect(relayed == chunk)
                // A file this peer does not download, and one it downloads but has forwarded
                // nothing of: no notice, the next answer comes.
                let quiet = FileID(bytes: [UInt8](repeating: 6, count: 32))!
                hub.beginDownload(of: quiet, chunkCount: 10)
                try await session.send([.relayRequest(id), .relayRequest(quiet), .inventoryRequest])
                guard case .inventory = try await session.receive() else {
                    Issue.record("expected the inventory next")
                    return
                }
            }
        }
    }

    @Test("a server that stops while connections pour in drops them cleanly (no trap on unserved ones)")
    func stopsDuringConnectionStorm() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        // A connection accepted as the server stops may never be served. NIO traps when an
        // async channel made for such a connection is dropped unused (apple/swift-nio#2813),
        // which would end this whole test process; so each round stops a server in the
        // middle of a storm of connections.
        for _ in 0..<20 {
            let server = try await TransferServer.bind(
                host: "127.0.0.1",
                port: 0,
                settings: TransferSettings(logger: StorageFixture.logger),
                responder: SwarmResponder(
                    store: store,
                    statistics: TransferStatistics(),
                    logger: StorageFixture.logger
                )
            )
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await server.run() }
                for _ in 0..<40 {
                    group.addTask {
                        let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                            .connect(to: address).get()
                        try? await channel?.close()
                    }
                }
                try? await Task.sleep(for: .milliseconds(2))
                group.cancelAll()
            }
        }
        // The store still serves: nothing above broke the process.
        #expect(await store.inventory().isEmpty)
        await store.close()
    }
}

/// Answers every frame with whether the serving task ran on the connection's event loop,
/// both when the frame arrived and after a sleep that resumes it from a timer.
private struct EventLoopProbe: TransferResponder {
    func serve(
        inbound: NIOAsyncChannelInboundStream<Frame>,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?,
        channel: any Channel
    ) async throws {
        for try await _ in inbound {
            let onArrival = channel.eventLoop.inEventLoop
            try await Task.sleep(for: .milliseconds(2))
            let afterSleep = channel.eventLoop.inEventLoop
            let answer = TransferMessage.failure(
                nil,
                chunk: 0,
                reason: .unknownFile,
                message: "\(onArrival) \(afterSleep)"
            )
            try await outbound.write(answer.frame())
        }
    }
}

extension TransferServerTests {
    @Test("a served connection's task runs on that connection's event loop")
    func servesOnTheConnectionsEventLoop() async throws {
        let server = try await TransferServer.bind(
            host: "127.0.0.1",
            port: 0,
            settings: TransferSettings(logger: StorageFixture.logger),
            responder: EventLoopProbe()
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            for _ in 0..<4 {
                try await TransferClient.connect(to: address, settings: .test) { session in
                    try await session.send([.inventoryRequest, .inventoryRequest])
                    for _ in 0..<2 {
                        guard case .failure(_, _, _, let message) = try await session.receive() else {
                            Issue.record("expected the probe's answer")
                            return
                        }
                        #expect(message == "true true")
                    }
                }
            }
        }
    }
}
