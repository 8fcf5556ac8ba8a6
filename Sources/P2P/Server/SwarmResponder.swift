import Logging
import NIOCore

/// Answers transfer requests from the chunk store: inventories, manifests, chunks; and
/// takes pushed chunks, verifying each against its manifest before keeping it.
///
/// Requests on one connection are answered in order, so a client may pipeline many; a
/// message that makes no sense from a client (a chunk it was not asked for, a malformed
/// payload) ends that connection. A client that downloads a file may ask, once per file,
/// for the chunks this peer is handed by a seeder: they are written to it on the same
/// connection, between answers, as relayed pieces (or pushed chunks, for chunks handed out
/// whole); and it is told at once which of them were forwarded before it asked
/// (`unrelayed`), so that it fetches those itself. A work request that asks for pieces is
/// answered with the chunk in pieces of that length, so that the downloader can forward
/// each as it arrives.
public struct SwarmResponder: TransferResponder {
    private let store: ChunkStore
    private let logger: Logger
    private let statistics: TransferStatistics
    private let uploadLimiter: RateLimiter
    private let pushAllowance: PushAllowance
    private let relayHub: RelayHub
    private let dispenser: WorkDispenser
    private let connectBack: ConnectBackProbe?
    private let deliveries: DeliveryReceiver?
    /// Files one connection may ask relays of, and hold work records for.
    static let maximumFilesPerConnection = 16

    /// Creates a responder.
    /// - Parameters:
    ///   - store: where chunks are.
    ///   - statistics: counters to update.
    ///   - uploadLimiter: paces the chunks served, shared by all connections.
    ///   - pushAllowance: the pushed bytes taken from each address, shared by all connections.
    ///   - relayHub: where this peer's downloads forward chunks; connections that ask for
    ///     relays subscribe to it.
    ///   - dispenser: hands out the chunks of files held whole, once each, to work requests.
    ///   - connectBack: answers connect-back requests; without it they are answered as
    ///     not tried.
    ///   - deliveries: answers delivery offers; without it they are refused as not accepted.
    ///   - logger: where to log.
    public init(
        store: ChunkStore,
        statistics: TransferStatistics,
        uploadLimiter: RateLimiter = RateLimiter(bytesPerSecond: 0),
        pushAllowance: PushAllowance = PushAllowance(),
        relayHub: RelayHub = RelayHub(),
        dispenser: WorkDispenser = WorkDispenser(),
        connectBack: ConnectBackProbe? = nil,
        deliveries: DeliveryReceiver? = nil,
        logger: Logger
    ) {
        self.connectBack = connectBack
        self.deliveries = deliveries
        self.store = store
        self.statistics = statistics
        self.uploadLimiter = uploadLimiter
        self.pushAllowance = pushAllowance
        self.relayHub = relayHub
        self.dispenser = dispenser
        self.logger = logger
    }

    public func serve(
        inbound: NIOAsyncChannelInboundStream<Frame>,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?,
        channel: any Channel
    ) async throws {
        try await withThrowingDiscardingTaskGroup { relays in
            // Manifests announced on this connection ahead of pushed chunks.
            var pushedManifests: [FileID: Manifest] = [:]
            var pushedManifestBytes = 0
            // Per file: what the client holds or was handed on this connection.
            var handed: [FileID: ChunkBitmap] = [:]
            var subscriptions: [FileID: RelayHub.Subscription] = [:]
            var pushes = PushAllowance.Gate(
                self.pushAllowance,
                remote: remote,
                statistics: self.statistics,
                logger: self.logger
            )
            defer { for subscription in subscriptions.values { subscription.cancel() } }
            // One connect-back per connection: each costs a connection of this peer's own.
            var connectedBack = false
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
                            TransferMessage.failure(id, chunk: 0, reason: .unknownFile, message: "no such file")
                                .frame()
                        )
                    }
                case .fileInventoryRequest(let id):
                    let entry = await self.store.inventoryEntry(for: id)
                    try await outbound.write(TransferMessage.inventory(entry.map { [$0] } ?? []).frame())
                case .collectionListRequest:
                    try await outbound.write(TransferMessage.collectionList(await self.store.collectionList()).frame())
                case .collectionManifestRequest(let id):
                    if let manifest = await self.store.collectionManifest(for: id) {
                        try await outbound.write(TransferMessage.collectionManifest(manifest.encoded).frame())
                    } else {
                        try await outbound.write(
                            TransferMessage.failure(id, chunk: 0, reason: .unknownFile, message: "no such collection")
                                .frame()
                        )
                    }
                case .chunkRequest(let id, let chunk):
                    try await outbound.write(await self.answer(id, chunk: chunk, to: remote).frame())
                case .workRequest(let id, let held, let pieceLength):
                    let answer = try await self.assign(id, held: held, handed: &handed, to: remote)
                    if case .assignedChunk(let id, let chunk, let bytes) = answer, pieceLength > 0 {
                        // All in one write: one flush, one hand-off to the event loop.
                        try await outbound.write(
                            contentsOf: Self.pieces(of: bytes, length: pieceLength).map { piece in
                                TransferMessage.assignedPiece(
                                    id,
                                    chunk: chunk,
                                    offset: piece.offset,
                                    bytes: piece.bytes
                                )
                                .frame()
                            }
                        )
                    } else {
                        try await outbound.write(answer.frame())
                    }
                case .relayRequest(let id, let requester):
                    guard subscriptions[id] == nil else { continue }
                    guard subscriptions.count < Self.maximumFilesPerConnection else {
                        throw P2PError(code: .protocolViolation, "relay requests for too many files")
                    }
                    let subscription = self.relayHub.subscribe(to: id, from: requester)
                    subscriptions[id] = subscription
                    if let missed = subscription.missed, missed.setCount > 0 {
                        try await outbound.write(TransferMessage.unrelayed(id, chunks: missed.bytes).frame())
                    }
                    relays.addTask {
                        // Through the channel, not the outbound writer, and awaited: the
                        // chunk counts as forwarding backlog until its bytes have gone to
                        // the socket. The writer returns as soon as it has posted a frame,
                        // so megabytes could wait in NIO's buffer while the backlog read
                        // empty and this peer asked the seeder for more.
                        for await relayed in subscription.chunks {
                            let message: TransferMessage =
                                switch relayed.kind {
                                case .chunk:
                                    .pushedChunk(relayed.file, chunk: relayed.chunk, bytes: relayed.bytes)
                                case .piece(let offset):
                                    .relayedPiece(
                                        relayed.file,
                                        chunk: relayed.chunk,
                                        offset: offset,
                                        bytes: relayed.bytes
                                    )
                                case .abort:
                                    .relayAbort(relayed.file, chunk: relayed.chunk)
                                }
                            try await channel.writeAndFlush(message.frame())
                            subscription.written(relayed)
                        }
                    }
                case .manifest(let bytes):
                    guard try pushes.admit(frame) else { continue }
                    let manifest = try Manifest.decode(bytes)
                    // At most 64 manifests, or 16 MiB of them, per connection.
                    if pushedManifests.count >= 64 || pushedManifestBytes + manifest.encoded.count > 16 << 20 {
                        pushedManifests.removeAll()
                        pushedManifestBytes = 0
                    }
                    pushedManifests[manifest.id] = manifest
                    pushedManifestBytes += manifest.encoded.count
                    await self.store.remember(manifest)
                case .pushedChunk(let id, let chunk, let bytes):
                    guard try pushes.admit(frame) else { continue }
                    let known =
                        if let pushed = pushedManifests[id] { pushed } else { await self.store.manifest(for: id) }
                    guard let manifest = known else {
                        throw P2PError(code: .protocolViolation, "pushed chunk of unknown file \(id.short)")
                    }
                    let outcome = await self.store.storePushed(bytes, chunk: chunk, of: manifest)
                    self.statistics.recordPush(outcome, bytes: bytes.readableBytes)
                    if outcome == .corrupt {
                        throw P2PError(code: .corrupt, "pushed chunk \(chunk) of \(id.short) does not verify")
                    }
                case .connectBackRequest(let port):
                    guard !connectedBack else {
                        throw P2PError(code: .protocolViolation, "a second connect-back request")
                    }
                    connectedBack = true
                    let answer: (reached: Bool, message: String)
                    if let probe = self.connectBack, let host = remote?.ipAddress,
                        let target = try? SocketAddress(ipAddress: host, port: port)
                    {
                        answer = await probe.probe(target)
                    } else {
                        answer = (false, "this peer does not connect back")
                    }
                    try await outbound.write(
                        TransferMessage.connectBackResult(reached: answer.reached, message: answer.message).frame()
                    )
                case .deliveryOffer(let offer):
                    // The connection is the delivery's: answered, fetched and receipted on it.
                    if let deliveries = self.deliveries {
                        try await deliveries.receive(offer, outbound: outbound, remote: remote)
                    } else {
                        try await outbound.write(
                            TransferMessage.deliveryRefused(
                                DeliveryRefusal(.notAccepting, "does not accept deliveries (serve --accept)")
                            ).frame()
                        )
                    }
                case .inventory, .chunkData, .assignedChunk, .unrelayed, .failure, .assignedPiece, .relayedPiece,
                    .relayAbort, .connectBackResult, .deliveryAccepted, .deliveryRefused, .deliveryProgress,
                    .deliveryReceipt, .collectionList, .collectionManifest:
                    throw P2PError(code: .protocolViolation, "unexpected \(frame.type) from a client")
                }
            }
            // The client is done: stop writing relayed chunks to it.
            relays.cancelAll()
        }
    }

    /// Answers a work request: the next chunk of the file nobody was handed yet, if this
    /// peer holds the whole file.
    private func assign(
        _ id: FileID,
        held: [UInt8],
        handed: inout [FileID: ChunkBitmap],
        to remote: SocketAddress?
    ) async throws -> TransferMessage {
        guard await self.store.hasComplete(id), let manifest = await self.store.manifest(for: id) else {
            return .failure(id, chunk: 0, reason: .noWork, message: "this peer does not hold the whole file")
        }
        var holds = handed[id] ?? ChunkBitmap(count: manifest.chunkCount)
        if !held.isEmpty {
            guard let reported = ChunkBitmap(bytes: held, count: manifest.chunkCount) else {
                throw P2PError(code: .protocolViolation, "work request with a bitmap that does not fit the file")
            }
            for index in reported.indices { holds.insert(index) }
        }
        guard handed[id] != nil || handed.count < Self.maximumFilesPerConnection else {
            throw P2PError(code: .protocolViolation, "work requests for too many files")
        }
        guard let chunk = self.dispenser.next(of: id, chunkCount: manifest.chunkCount, requesterHolds: holds) else {
            handed[id] = holds
            return .failure(id, chunk: 0, reason: .noWork, message: "every chunk has been handed out")
        }
        holds.insert(chunk)
        handed[id] = holds
        switch await self.answer(id, chunk: chunk, to: remote) {
        case .chunkData(let id, let chunk, let bytes):
            return .assignedChunk(id, chunk: chunk, bytes: bytes)
        case let failure:
            self.dispenser.giveBack(chunk, of: id)
            return failure
        }
    }

    /// The smallest piece a work request may ask for: smaller ones would cost a frame's
    /// work for too few bytes.
    static let minimumPieceLength = 16 * 1024

    /// A chunk cut into pieces of `length` bytes (at least `minimumPieceLength`), each with
    /// its offset in the chunk.
    static func pieces(of bytes: ByteBuffer, length: Int) -> [(offset: Int, bytes: ByteBuffer)] {
        let length = max(length, Self.minimumPieceLength)
        return stride(from: 0, to: bytes.readableBytes, by: length).map { offset in
            (offset, bytes.getSlice(at: bytes.readerIndex + offset, length: min(length, bytes.readableBytes - offset))!)
        }
    }

    /// How long a request may wait for a chunk this peer forwarded but has not written
    /// yet: the write follows the forward within milliseconds, unless the disk stalls.
    static let forwardedWriteWait: Duration = .milliseconds(100)

    private func answer(_ id: FileID, chunk: Int, to remote: SocketAddress?) async -> TransferMessage {
        do {
            var read = try await self.store.readChunk(id, index: chunk)
            // A chunk forwarded here is verified, and its write follows the forward: a
            // subscriber told of it (`unrelayed`) may ask within that moment. Answered "not
            // held", it would count this peer as lacking the chunk until the next inventory,
            // so the answer waits for the write to land (woken by it, not polling).
            if read == nil && self.relayHub.hasForwarded(chunk, of: id) {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.store.waitForWrite(id, index: chunk) }
                    group.addTask { try? await Task.sleep(for: Self.forwardedWriteWait) }
                    await group.next()
                    group.cancelAll()
                }
                read = try await self.store.readChunk(id, index: chunk)
            }
            guard let bytes = read else {
                return .failure(id, chunk: chunk, reason: .chunkNotHeld, message: "chunk not held")
            }
            try await self.uploadLimiter.acquire(bytes.readableBytes)
            self.statistics.recordServed(bytes: bytes.readableBytes, to: remote)
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
