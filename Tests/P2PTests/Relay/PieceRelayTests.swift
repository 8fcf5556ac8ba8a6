import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@testable import P2P

@Suite("A relayer forwarding a seeder's chunk in pieces, over loopback", .timeLimit(.minutes(1)))
struct PieceRelayTests {
    static let chunk = 256 * 1024

    /// How the scripted seeder ends the chunk it hands out.
    enum Ending: Sendable {
        /// Sends the last piece as it is.
        case honest
        /// Sends the last piece with one byte flipped: the chunk does not verify.
        case corrupt
        /// Closes the connection instead of sending the last piece.
        case hangUp
    }

    /// A seeder that answers truthfully from its store, except that it hands out chunk 0 in
    /// the pieces asked for (one, if none were asked for), signals `asked`, holds the last
    /// piece until `release` is signalled, and then ends the chunk as `ending` says. Every
    /// later work request gets "no work".
    struct ScriptedSeeder: TransferResponder {
        let store: ChunkStore
        let ending: Ending
        let release: Wakeup
        var asked = Wakeup()
        let handedOut = HandedOut()

        final class HandedOut: Sendable {
            private let done = Mutex(false)

            /// True the first time only.
            func first() -> Bool {
                self.done.withLock { done in
                    defer { done = true }
                    return !done
                }
            }
        }

        func serve(
            inbound: NIOAsyncChannelInboundStream<Frame>,
            outbound: NIOAsyncChannelOutboundWriter<Frame>,
            remote: SocketAddress?,
            channel: any Channel
        ) async throws {
            for try await frame in inbound {
                switch try TransferMessage(frame: frame) {
                case .inventoryRequest:
                    try await outbound.write(TransferMessage.inventory(await self.store.inventory()).frame())
                case .fileInventoryRequest(let id):
                    let entry = await self.store.inventoryEntry(for: id)
                    try await outbound.write(TransferMessage.inventory(entry.map { [$0] } ?? []).frame())
                case .manifestRequest(let id):
                    let manifest = try #require(await self.store.manifest(for: id))
                    try await outbound.write(TransferMessage.manifest(manifest.encoded).frame())
                case .relayRequest:
                    continue
                case .workRequest(let id, _, let pieceLength):
                    guard self.handedOut.first() else {
                        try await outbound.write(
                            TransferMessage.failure(id, chunk: 0, reason: .noWork, message: "none left").frame()
                        )
                        continue
                    }
                    let bytes = try #require(try await self.store.readChunk(id, index: 0))
                    let pieces = SwarmResponder.pieces(
                        of: bytes,
                        length: pieceLength > 0 ? pieceLength : bytes.readableBytes
                    )
                    for piece in pieces.dropLast() {
                        try await outbound.write(
                            TransferMessage.assignedPiece(id, chunk: 0, offset: piece.offset, bytes: piece.bytes)
                                .frame()
                        )
                    }
                    self.asked.signal()
                    await self.release.wait()
                    var last = pieces.last!
                    switch self.ending {
                    case .honest:
                        break
                    case .corrupt:
                        let at = last.bytes.readerIndex
                        last.bytes.setInteger(~last.bytes.getInteger(at: at, as: UInt8.self)!, at: at)
                    case .hangUp:
                        throw CancellationError()
                    }
                    try await outbound.write(
                        TransferMessage.assignedPiece(id, chunk: 0, offset: last.offset, bytes: last.bytes).frame()
                    )
                case .chunkRequest(let id, let chunk):
                    let bytes = try #require(try await self.store.readChunk(id, index: chunk))
                    try await outbound.write(TransferMessage.chunkData(id, chunk: chunk, bytes: bytes).frame())
                default:
                    return
                }
            }
        }
    }

    /// Runs the scripted seeder and a relayer (a downloader with a transfer server that
    /// forwards what it is handed); a subscriber asks the relayer for relays before its
    /// download starts, and gets back what `subscriber` returns.
    func relay<Result: Sendable>(
        ending: Ending,
        _ subscriber:
            @Sendable (_ file: FileID, _ session: inout TransferClient, _ release: Wakeup) async throws -> Result
    ) async throws -> Result {
        let seederFolder = try StorageFixture()
        let relayerFolder = try StorageFixture()
        defer { for folder in [seederFolder, relayerFolder] { folder.remove() } }
        _ = try seederFolder.share("pieces.bin", size: 2 * Self.chunk)
        let logger = StorageFixture.logger
        let seederStore = try await ChunkStore.open(configuration: seederFolder.configuration(), logger: logger)
        let relayerStore = try await ChunkStore.open(configuration: relayerFolder.configuration(), logger: logger)
        // Closed, and awaited, before the folders go: whatever the test's outcome.
        let outcome: Swift.Result<Result, any Error>
        do {
            let id = try #require(await seederStore.inventory().first?.id)
            let release = Wakeup()
            let seeder = try await TransferServer.loopback(
                ScriptedSeeder(store: seederStore, ending: ending, release: release),
                logger: logger
            )
            let hub = RelayHub()
            let relayer = try await TransferServer.loopback(
                SwarmResponder(store: relayerStore, statistics: TransferStatistics(), relayHub: hub, logger: logger),
                logger: logger
            )
            let table = PeerTable()
            try table.recordLoopbackPeer(PeerID(high: 0, low: 1), transferPort: seeder.port)
            let downloader = Downloader(
                store: relayerStore,
                table: table,
                settings: TransferSettings(logger: logger),
                relayHub: hub
            )
            let relayerAddress = try SocketAddress(ipAddress: "127.0.0.1", port: relayer.port)
            outcome = .success(
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await seeder.run() }
                    group.addTask { try await relayer.run() }
                    defer { group.cancelAll() }
                    return try await TransferClient.connect(
                        to: relayerAddress,
                        settings: .test,
                        answerTimeout: .seconds(10)
                    ) { session in
                        try await session.send(.relayRequest(id))
                        // The relayer has taken the request once it has a subscriber.
                        for _ in 0..<200 where hub.subscriberCount(of: id) == 0 {
                            try await Task.sleep(for: .milliseconds(10))
                        }
                        try #require(hub.subscriberCount(of: id) == 1)
                        group.addTask { _ = try? await downloader.download(name: "pieces.bin", timeout: .seconds(20)) }
                        return try await subscriber(id, &session, release)
                    }
                }
            )
        } catch {
            outcome = .failure(error)
        }
        await seederStore.close()
        await relayerStore.close()
        return try outcome.get()
    }

    @Test("a download whose task is cancelled while it waits ends at once, its .partial kept")
    func cancelledDownloadEnds() async throws {
        let seederFolder = try StorageFixture()
        let downloaderFolder = try StorageFixture()
        defer { for folder in [seederFolder, downloaderFolder] { folder.remove() } }
        _ = try seederFolder.share("held.bin", size: 2 * Self.chunk)
        let logger = StorageFixture.logger
        let seederStore = try await ChunkStore.open(configuration: seederFolder.configuration(), logger: logger)
        let downloaderStore = try await ChunkStore.open(configuration: downloaderFolder.configuration(), logger: logger)
        // The seeder takes the work request and never finishes its answer.
        let responder = ScriptedSeeder(store: seederStore, ending: .honest, release: Wakeup())
        let seeder = try await TransferServer.loopback(responder, logger: logger)
        let table = PeerTable()
        try table.recordLoopbackPeer(PeerID(high: 0, low: 1), transferPort: seeder.port)
        let downloader = Downloader(store: downloaderStore, table: table, settings: TransferSettings(logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await seeder.run() }
            defer { group.cancelAll() }
            let download = Task { try await downloader.download(name: "held.bin", timeout: .seconds(60)) }
            await responder.asked.wait()
            let cancelled = ContinuousClock.now
            download.cancel()
            let outcome = await download.result
            #expect(ContinuousClock.now - cancelled < .seconds(5))
            #expect(throws: CancellationError.self) { try outcome.get() }
            // Nothing was completed; the .partial stays for the next attempt.
            #expect(await downloaderStore.inventory().isEmpty)
            let partials = downloaderFolder.downloads.appendingPathComponent(ChunkStore.partialFolderName).path
            let kept = try FileManager.default.contentsOfDirectory(atPath: partials)
            #expect(kept.count == 1 && kept[0].hasSuffix(".partial"))
        }
        await seederStore.close()
        await downloaderStore.close()
    }

    /// The next relayed message, skipping none.
    static func next(_ session: inout TransferClient) async throws -> TransferMessage {
        try await session.receive()
    }

    @Test(
        "the pieces before the last are forwarded while the seeder holds the last; the last follows once the chunk verifies"
    )
    func forwardsBeforeTheChunkIsWhole() async throws {
        let pieceLength = Downloader.Configuration().relayPieceLength
        let pieces = Self.chunk / pieceLength
        try await self.relay(ending: .honest) { file, session, release in
            var chunk = ByteBuffer()
            for index in 0..<(pieces - 1) {
                let message = try await Self.next(&session)
                guard case .relayedPiece(file, 0, index * pieceLength, let bytes) = message else {
                    Issue.record("expected piece \(index) of chunk 0, got \(message.kind)")
                    return
                }
                chunk.writeImmutableBuffer(bytes)
            }
            // All of that came while the seeder still held the chunk's last piece.
            release.signal()
            let message = try await Self.next(&session)
            guard case .relayedPiece(file, 0, (pieces - 1) * pieceLength, let bytes) = message else {
                Issue.record("expected the last piece of chunk 0, got \(message.kind)")
                return
            }
            chunk.writeImmutableBuffer(bytes)
            #expect(chunk.readableBytes == Self.chunk)
        }
    }

    @Test("a chunk that does not verify at the relayer is aborted at its subscribers, not completed")
    func abortsABadChunk() async throws {
        try await self.relay(ending: .corrupt) { file, session, release in
            try await self.expectAbort(of: file, on: &session, after: release)
        }
    }

    @Test("a chunk whose seeder hangs up before the last piece is aborted at the relayer's subscribers")
    func abortsWhenTheSourceGoes() async throws {
        try await self.relay(ending: .hangUp) { file, session, release in
            try await self.expectAbort(of: file, on: &session, after: release)
        }
    }

    /// Reads the first pieces of chunk 0, releases the seeder, and expects an abort next.
    func expectAbort(of file: FileID, on session: inout TransferClient, after release: Wakeup) async throws {
        let pieces = Self.chunk / Downloader.Configuration().relayPieceLength
        for _ in 0..<(pieces - 1) {
            let message = try await Self.next(&session)
            guard case .relayedPiece(file, 0, _, _) = message else {
                Issue.record("expected a piece of chunk 0, got \(message.kind)")
                return
            }
        }
        release.signal()
        let message = try await Self.next(&session)
        #expect(message == .relayAbort(file, chunk: 0), "got \(message.kind)")
    }
}
