import NIOCore
import NIOPosix
import Synchronization
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
    /// `responder`.
    private func withServer<Result: Sendable>(
        _ responder: some TransferResponder,
        _ body: (SocketAddress) async throws -> Result
    ) async throws -> Result {
        let server = try await TransferServer.bind(
            host: "127.0.0.1",
            port: 0,
            // Every test peer shares 127.0.0.1: room for all of them at once, and for the
            // connections that are still closing as the next ones open.
            limits: TransferServer.Limits(maximumConnections: 1024, maximumConnectionsPerAddress: 1024),
            responder: responder,
            logger: StorageFixture.logger
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            return try await body(address)
        }
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
        let answers = try await self.withServer(FixedInventory(frame: huge)) { liar in
            try await self.withServer(FixedInventory(frame: TransferMessage.inventory([]).frame())) { honest in
                await Downloader.inventories(
                    of: [KnownPeer.fixture(1, at: liar), KnownPeer.fixture(2, at: honest)],
                    logger: StorageFixture.logger
                )
            }
        }
        #expect(answers.map(\.0.id) == [PeerID(high: 0, low: 2)])
    }

    @Test("no more than the set number of peers are asked at once, and every one is asked")
    func boundedConcurrency() async throws {
        let counter = ConcurrencyCounter()
        let peerCount = Downloader.maximumConcurrentInventories + 8
        let answers = try await self.withServer(CountingInventory(counter: counter)) { address in
            await Downloader.inventories(
                of: (1...peerCount).map { KnownPeer.fixture(UInt64($0), at: address) },
                logger: StorageFixture.logger
            )
        }
        #expect(answers.count == peerCount)
        #expect(counter.peak <= Downloader.maximumConcurrentInventories)
        #expect(counter.peak > 1)
    }
}

/// Answers every inventory request with one prepared frame.
private struct FixedInventory: TransferResponder {
    let frame: Frame

    func serve(
        inbound: NIOAsyncChannelInboundStream<Frame>,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?,
        channel: any Channel
    ) async throws {
        for try await _ in inbound { try await outbound.write(self.frame) }
    }
}

/// How many connections are being answered at once, and the most there were.
private final class ConcurrencyCounter: Sendable {
    private let state = Mutex((now: 0, peak: 0))

    func enter() {
        self.state.withLock {
            $0.now += 1
            $0.peak = max($0.peak, $0.now)
        }
    }
    func leave() { self.state.withLock { $0.now -= 1 } }
    var peak: Int { self.state.withLock { $0.peak } }
}

/// Answers inventory requests with an empty inventory after 50 ms, counting how many
/// connections wait at once.
private struct CountingInventory: TransferResponder {
    let counter: ConcurrencyCounter

    func serve(
        inbound: NIOAsyncChannelInboundStream<Frame>,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?,
        channel: any Channel
    ) async throws {
        for try await _ in inbound {
            self.counter.enter()
            try? await Task.sleep(for: .milliseconds(50))
            self.counter.leave()
            try await outbound.write(TransferMessage.inventory([]).frame())
        }
    }
}
