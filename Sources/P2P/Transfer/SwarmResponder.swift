import Logging
import NIOCore

/// Answers transfer requests from the chunk store: inventories, manifests, chunks; and
/// takes pushed chunks, verifying each against its manifest before keeping it.
///
/// Requests on one connection are answered in order, so a client may pipeline many; a
/// message that makes no sense from a client (a chunk it was not asked for, a malformed
/// payload) ends that connection.
public struct SwarmResponder: TransferResponder {
    private let store: ChunkStore
    private let logger: Logger
    private let statistics: TransferStatistics
    private let uploadLimiter: RateLimiter
    private let pushAllowance: PushAllowance

    /// Creates a responder.
    /// - Parameters:
    ///   - store: where chunks are.
    ///   - statistics: counters to update.
    ///   - uploadLimiter: paces the chunks served, shared by all connections.
    ///   - pushAllowance: the pushed bytes taken from each address, shared by all connections.
    ///   - logger: where to log.
    public init(
        store: ChunkStore,
        statistics: TransferStatistics,
        uploadLimiter: RateLimiter = RateLimiter(bytesPerSecond: 0),
        pushAllowance: PushAllowance = PushAllowance(),
        logger: Logger
    ) {
        self.store = store
        self.statistics = statistics
        self.uploadLimiter = uploadLimiter
        self.pushAllowance = pushAllowance
        self.logger = logger
    }

    public func serve(
        inbound: NIOAsyncChannelInboundStream<Frame>,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?
    ) async throws {
        // Manifests announced on this connection ahead of pushed chunks.
        var pushedManifests: [FileID: Manifest] = [:]
        var pushes = PushAllowance.Gate(
            self.pushAllowance,
            remote: remote,
            statistics: self.statistics,
            logger: self.logger
        )
        for try await frame in inbound {
            let message = try TransferMessage(frame: frame)
            switch message {
            case .inventoryRequest:
                try await outbound.write(TransferMessage.inventory(await self.store.inventory()).frame())
            case .manifestRequest(let id):
                if let manifest = await self.store.manifest(for: id) {
                    try await outbound.write(TransferMessage.manifest(manifest.encoded).frame())
                } else {
                    try await outbound.write(
                        TransferMessage.failure(id, chunk: 0, reason: .unknownFile, message: "no such file").frame()
                    )
                }
            case .chunkRequest(let id, let chunk):
                try await outbound.write(await self.answer(id, chunk: chunk).frame())
            case .manifest(let bytes):
                guard try pushes.admit(frame) else { continue }
                let manifest = try Manifest.decode(bytes)
                if pushedManifests.count >= 64 { pushedManifests.removeAll() }
                pushedManifests[manifest.id] = manifest
                await self.store.remember(manifest)
            case .pushedChunk(let id, let chunk, let bytes):
                guard try pushes.admit(frame) else { continue }
                let known = if let pushed = pushedManifests[id] { pushed } else { await self.store.manifest(for: id) }
                guard let manifest = known else {
                    throw P2PError(code: .protocolViolation, "pushed chunk of unknown file \(id.short)")
                }
                let outcome = await self.store.storePushed(bytes, chunk: chunk, of: manifest)
                self.statistics.recordPush(outcome, bytes: bytes.readableBytes)
                if outcome == .corrupt {
                    throw P2PError(code: .corrupt, "pushed chunk \(chunk) of \(id.short) does not verify")
                }
            case .inventory, .chunkData, .failure:
                throw P2PError(code: .protocolViolation, "unexpected \(frame.type) from a client")
            }
        }
    }

    private func answer(_ id: FileID, chunk: Int) async -> TransferMessage {
        do {
            guard let bytes = try await self.store.readChunk(id, index: chunk) else {
                return .failure(id, chunk: chunk, reason: .chunkNotHeld, message: "chunk not held")
            }
            try await self.uploadLimiter.acquire(bytes.readableBytes)
            self.statistics.recordServed(bytes: bytes.readableBytes)
            return .chunkData(id, chunk: chunk, bytes: bytes)
        } catch {
            self.logger.warning(
                "cannot read a chunk",
                metadata: ["file.id": "\(id.short)", "chunk.index": "\(chunk)", "error": "\(error)"]
            )
            return .failure(id, chunk: chunk, reason: .storage, message: "cannot read the chunk")
        }
    }
}
