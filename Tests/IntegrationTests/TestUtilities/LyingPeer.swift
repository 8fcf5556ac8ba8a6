import Foundation
import Logging
import NIOCore
import NIOPosix
import _NIOFileSystem

@testable import P2P

/// A peer in the test process that speaks the protocol and lies: it announces itself by
/// discovery like any peer, answers inventories and manifests truthfully from its store,
/// and corrupts every chunk it serves.
struct LyingPeer {
    /// How it lies.
    enum Lie: Sendable {
        /// Flips one byte in every chunk.
        case corruptChunks
        /// Hands out a manifest that does not hash to the file id asked for.
        case wrongManifest
        /// Claims every chunk in its inventory, then answers every request with "not held".
        case claimsAllServesNone
        /// Answers a relay request with a notice of unrelayed chunks whose bitmap does not
        /// fit the file.
        case misfitUnrelayedNotice
        /// Answers a relay request with two notices of unrelayed chunks that name the same
        /// chunk.
        case repeatedUnrelayedNotice
        /// Lists every file in its inventory as `good.bin`, whatever its manifest names it.
        case renamedInInventory
    }

    let id: PeerID
    let port: Int

    /// Runs the lying peer on loopback in `swarm` for the duration of `body`.
    /// - Parameters:
    ///   - folder: its storage, prepared with the files it claims.
    ///   - lie: how it lies.
    ///   - swarm: whose discovery port it announces on.
    ///   - body: the test, while it runs.
    static func with<Result: Sendable>(
        storage: StorageConfiguration,
        lie: Lie,
        in swarm: TestSwarm,
        _ body: @Sendable (LyingPeer) async throws -> Result
    ) async throws -> Result {
        let logger = TransferFixtures.logger
        let store = try await ChunkStore.open(configuration: storage, logger: logger)
        let server = try await TransferServer.bind(
            host: "127.0.0.1",
            port: 0,
            settings: TransferSettings(logger: logger),
            responder: LyingResponder(store: store, lie: lie)
        )
        let id = PeerID.random()
        let discovery = PeerDiscovery(
            peerID: id,
            transferPort: server.port,
            configuration: DiscoveryConfiguration(
                port: swarm.discoveryPort,
                announceInterval: .milliseconds(Int64(swarm.announceInterval * 1000)),
                interfaceNames: ["lo"]
            ),
            logger: logger
        )
        let result = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            group.addTask { try await discovery.run() }
            defer { group.cancelAll() }
            return try await body(LyingPeer(id: id, port: server.port))
        }
        await store.close()
        return result
    }
}

/// Answers like a `SwarmResponder`, but corrupts chunks.
private struct LyingResponder: TransferResponder {
    let store: ChunkStore
    let lie: LyingPeer.Lie

    func serve(
        inbound: NIOAsyncChannelInboundStream<Frame>,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?,
        channel: any Channel
    ) async throws {
        var nextAssigned = 0
        for try await frame in inbound {
            switch try TransferMessage(frame: frame) {
            case .relayRequest(let id, _) where self.lie == .misfitUnrelayedNotice:
                try await outbound.write(TransferMessage.unrelayed(id, chunks: [0xFF, 0xFF, 0xFF]).frame())
            case .relayRequest(let id, _) where self.lie == .repeatedUnrelayedNotice:
                let notice = TransferMessage.unrelayed(id, chunks: [0x80])
                try await outbound.write(contentsOf: [notice.frame(), notice.frame()])
            case .relayRequest:
                // Says nothing, relays nothing.
                continue
            case .workRequest(let id, _, _) where self.lie == .claimsAllServesNone:
                try await outbound.write(
                    TransferMessage.failure(id, chunk: 0, reason: .noWork, message: "none").frame()
                )
            case .workRequest(let id, _, _):
                // Hands out chunks in order, corrupted like the answers below.
                let chunk = nextAssigned
                nextAssigned += 1
                guard let bytes = try await self.store.readChunk(id, index: chunk) else {
                    try await outbound.write(
                        TransferMessage.failure(id, chunk: 0, reason: .noWork, message: "done").frame()
                    )
                    continue
                }
                try await outbound.write(
                    TransferMessage.assignedChunk(id, chunk: chunk, bytes: self.corrupted(bytes)).frame()
                )
            case .inventoryRequest where self.lie == .renamedInInventory:
                let renamed = try await self.store.inventory().map { entry in
                    var entry = entry
                    entry.name = try FileName("good.bin")
                    return entry
                }
                try await outbound.write(TransferMessage.inventory(renamed).frame())
            case .inventoryRequest:
                try await outbound.write(TransferMessage.inventory(await self.store.inventory()).frame())
            case .fileInventoryRequest(let id) where self.lie == .renamedInInventory:
                let renamed = try await self.store.inventory().filter { $0.id == id }.map { entry in
                    var entry = entry
                    entry.name = try FileName("good.bin")
                    return entry
                }
                try await outbound.write(TransferMessage.inventory(renamed).frame())
            case .fileInventoryRequest(let id):
                let entry = await self.store.inventoryEntry(for: id)
                try await outbound.write(TransferMessage.inventory(entry.map { [$0] } ?? []).frame())
            case .manifestRequest(let id):
                guard let manifest = await self.store.manifest(for: id) else { return }
                var bytes = manifest.encoded
                if case .wrongManifest = self.lie {
                    // Still a well-formed manifest, of another file: only the id check tells.
                    bytes[bytes.count - 1] ^= 0xFF
                }
                try await outbound.write(TransferMessage.manifest(bytes).frame())
            case .chunkRequest(let id, let chunk) where self.lie == .claimsAllServesNone:
                try await outbound.write(
                    TransferMessage.failure(id, chunk: chunk, reason: .chunkNotHeld, message: "gone").frame()
                )
            case .chunkRequest(let id, let chunk):
                guard let bytes = try await self.store.readChunk(id, index: chunk) else { return }
                // Valid frame, valid checksum: only the SHA-256 against the manifest can tell.
                try await outbound.write(
                    TransferMessage.chunkData(id, chunk: chunk, bytes: self.corrupted(bytes)).frame()
                )
            default:
                return
            }
        }
    }

    /// The chunk with one byte flipped, if this peer corrupts chunks.
    private func corrupted(_ chunk: ByteBuffer) -> ByteBuffer {
        var bytes = chunk
        if self.lie == .corruptChunks, bytes.readableBytes > 0 {
            let at = bytes.readerIndex + bytes.readableBytes / 2
            bytes.setInteger(bytes.getInteger(at: at, as: UInt8.self)! ^ 0x5A, at: at)
        }
        return bytes
    }
}
