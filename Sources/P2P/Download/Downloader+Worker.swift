import DequeModule
import Logging
import NIOCore
import NIOPosix
import Synchronization
import _NIOFileSystem

extension Downloader {
    /// One peer's worker: on one connection, asks the peer to relay the file's chunks it
    /// is handed, keeps its inventory fresh, and keeps a window of requests in flight (for
    /// work, if it is the seeder a crowd shares; for chunks, otherwise), while a receiver
    /// verifies and writes whatever comes back, answers and relayed chunks alike.
    func work(with peer: KnownPeer, on run: DownloadRun) async {
        let id = peer.id
        let link = WorkerLink()
        run.register(link.wakeup)
        defer {
            run.unregister(link.wakeup)
            run.cancelAll(link.chunksInFlight, from: id)
        }
        do {
            try await TransferClient.connect(
                to: peer.transferAddress,
                settings: self.settings,
                answerTimeout: self.configuration.answerTimeout
            ) { session in
                run.markTried(peer)
                // While this connection is open the peer is alive, whatever becomes of its
                // announcements on a full link.
                self.table.hold(id)
                defer { self.table.release(id) }
                let sender = session.sender
                // A stalled answer closes the connection; the receiver's wait then fails.
                let timeout = self.configuration.answerTimeout
                let watchdog = sender.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) {
                    _ in
                    if link.isStalled(after: timeout) { sender.close() }
                }
                defer { watchdog.cancel() }
                link.expect(.inventory)
                try await sender.send([
                    .relayRequest(run.manifest.id, requester: self.relayHub.me),
                    .fileInventoryRequest(run.manifest.id),
                ])
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await self.sendRequests(to: id, link: link, sender: sender, run: run) }
                    try await self.receive(from: id, session: &session, link: link, run: run)
                    tasks.cancelAll()
                }
            }
        } catch {
            if !run.worksWith(id) {
                self.logger.debug("no longer a relay partner", metadata: ["remote.peer.id": "\(id.short)"])
            } else if !run.isFinished && !Task.isCancelled {
                self.logger.info(
                    "stopped downloading from peer",
                    metadata: [
                        "remote.peer.id": "\(id.short)",
                        "error": "\(link.timedOut ? "no answer for \(self.configuration.answerTimeout)" : "\(error)")",
                    ]
                )
            }
            run.remove(id, dropped: (error as? P2PError)?.code == .corrupt)
        }
    }

    /// The sending half of a worker: requests as the window, the forwarding backlog and
    /// the scheduler allow; then it sleeps until an answer, a change in the download or
    /// the backlog falling wakes it.
    private func sendRequests(
        to id: PeerID,
        link: WorkerLink,
        sender: TransferClient.Sender,
        run: DownloadRun
    ) async throws {
        let file = run.manifest.id
        let chunkSize = run.manifest.chunkSize
        let pacing = WorkerPacing(configuration: self.configuration, chunkSize: chunkSize)
        var lastRefresh = ContinuousClock.now
        var sentHeld = false
        while !run.isFinished && !Task.isCancelled {
            // The relay overlay moved this peer's partners: the connection goes (the
            // receiving half ends with it), and its requests go back to the scheduler.
            guard run.worksWith(id) else {
                sender.close()
                return
            }
            var requests: [TransferMessage] = []
            let now = ContinuousClock.now
            if pacing.isRefreshDue(
                peerHoldsAll: run.holdsAll(id),
                sinceLastRefresh: now - lastRefresh,
                expectingInventory: link.isExpecting(.inventory)
            ) {
                link.expect(.inventory)
                requests.append(.fileInventoryRequest(file))
                lastRefresh = now
            }
            let window = link.window(
                chunkSize: chunkSize,
                initial: self.configuration.initialWindow,
                configuration: self.configuration
            )
            if run.isWorkSource(id) {
                // Partners that have not subscribed yet soon will: what is handed out
                // before they do is forwarded to nobody, and each of them fetches it alone.
                let relaying = self.relayHub.subscriberCount(of: file) > 0 || run.hasRelayPartners
                while link.requestsInFlight < pacing.workRequestLimit(relaying: relaying, window: window) {
                    if relaying
                        && self.relayHub.signalWhenBacklog(
                            of: file,
                            isBelow: pacing.backlogBound(inFlight: link.requestsInFlight),
                            link.wakeup
                        )
                    {
                        break
                    }
                    link.expect(.work)
                    requests.append(
                        .workRequest(
                            file,
                            held: sentHeld ? [] : run.heldBitmapBytes,
                            pieceLength: pacing.pieceLength(relaying: relaying)
                        )
                    )
                    sentHeld = true
                }
            } else {
                while link.requestsInFlight < window, let chunk = run.next(for: id) {
                    link.expect(.chunk(chunk))
                    requests.append(.chunkRequest(file, chunk: chunk))
                }
            }
            if !requests.isEmpty { try await sender.send(requests) }
            await link.wakeup.wait(atMost: .milliseconds(250), on: sender.eventLoop)
        }
    }

    /// The receiving half of a worker: matches answers to requests in order, takes relayed
    /// chunks whenever they come, and verifies and writes chunks in child tasks so that
    /// hashing and disk writes overlap with receiving (and use the other cores).
    private func receive(
        from id: PeerID,
        session: inout TransferClient,
        link: WorkerLink,
        run: DownloadRun
    ) async throws {
        let file = run.manifest.id
        // Chunks handed out in pieces (answers come in order: one at a time), and chunks
        // forwarded in pieces, being put together.
        var assigned = PieceAssembler(manifest: run.manifest, maximumOpenChunks: 1)
        var relayedPieces = PieceAssembler(manifest: run.manifest)
        // The connection ended in the middle of a chunk handed out here, whose first pieces
        // were forwarded: they will not be completed.
        defer { for chunk in assigned.openChunks { self.relayHub.abort(chunk, of: file) } }
        try await withThrowingTaskGroup(of: Void.self) { writers in
            var writing = 0
            // The chunks the peer has said it will not forward: those forwarded before it
            // took this connection's relay request, then each one its queue to here had no
            // room for. A relayer forwards a chunk once, so a chunk named twice is a peer
            // trying to steer the scheduler.
            var toldUnrelayed = ChunkBitmap(count: run.manifest.chunkCount)
            func write(
                _ bytes: ByteBuffer,
                chunk: Int,
                as arrival: ChunkArrival,
                lastPiece: (offset: Int, bytes: ByteBuffer)? = nil
            ) async throws {
                if writing >= self.configuration.writesInFlight {
                    try await writers.next()
                    writing -= 1
                }
                writing += 1
                writers.addTask {
                    try await self.accept(bytes, chunk: chunk, from: id, run: run, as: arrival, lastPiece: lastPiece)
                }
            }
            while !run.isFinished {
                let message = try await session.receiveWithoutTimeout()
                link.madeProgress()
                switch message {
                case .pushedChunk(let fileID, let chunk, let bytes) where fileID == file:
                    try await write(bytes, chunk: chunk, as: .relayed)
                case .chunkData(let fileID, let chunk, let bytes) where fileID == file:
                    try link.answered(.chunk(chunk), bytes: bytes.readableBytes)
                    try await write(bytes, chunk: chunk, as: .pulled)
                case .assignedChunk(let fileID, let chunk, let bytes) where fileID == file:
                    try link.answered(.work, bytes: bytes.readableBytes)
                    try await write(bytes, chunk: chunk, as: .assigned)
                case .assignedPiece(let fileID, let chunk, let offset, let bytes) where fileID == file:
                    // Checked at the first piece, not only at the last: the pieces before
                    // it are forwarded at once.
                    guard link.isAnswering(.work) else {
                        throw P2PError(code: .protocolViolation, "a piece of work that was not asked for")
                    }
                    if let whole = try assigned.add(bytes, chunk: chunk, offset: offset) {
                        try link.answered(.work, bytes: whole.readableBytes)
                        try await write(whole, chunk: chunk, as: .assigned, lastPiece: (offset, bytes))
                    } else {
                        self.relayHub.forwardPiece(
                            bytes,
                            chunk: chunk,
                            offset: offset,
                            chunkLength: run.manifest.length(ofChunk: chunk),
                            of: file
                        )
                    }
                case .relayedPiece(let fileID, let chunk, let offset, let bytes) where fileID == file:
                    if let whole = try relayedPieces.add(bytes, chunk: chunk, offset: offset) {
                        try await write(whole, chunk: chunk, as: .relayed)
                    }
                case .relayAbort(let fileID, let chunk) where fileID == file:
                    relayedPieces.drop(chunk)
                case .unrelayed(let fileID, let bytes) where fileID == file:
                    guard let chunks = ChunkBitmap(bytes: bytes, count: run.manifest.chunkCount) else {
                        throw P2PError(code: .protocolViolation, "unrelayed chunks that do not fit the file")
                    }
                    guard toldUnrelayed.insert(contentsOf: chunks) else {
                        throw P2PError(code: .protocolViolation, "a chunk named twice as unrelayed")
                    }
                    run.unrelayed(chunks, by: id)
                case .inventory(let entries):
                    try link.answered(.inventory, bytes: 0)
                    let entry = entries.first { $0.id == file }
                    run.update(
                        id,
                        holding: entry?.bitmap ?? ChunkBitmap(count: run.manifest.chunkCount),
                        listsFile: entry != nil
                    )
                case .failure(_, let chunk, let reason, _):
                    switch try link.answeredWithFailure(chunk: chunk) {
                    case .work:
                        // Every chunk has been handed out (or this peer cannot hand any):
                        // what is missing now comes from whoever holds it.
                        if let missing = run.workExhausted() {
                            self.logger.debug(
                                "the seeder has handed out every chunk",
                                metadata: ["remote.peer.id": "\(id.short)", "chunks.missing": "\(missing)"]
                            )
                        }
                    case .chunk(let chunk):
                        if reason == .busy { run.cancel(chunk, from: id) } else { run.lacks(chunk, peer: id) }
                    case .inventory:
                        break
                    }
                default:
                    throw P2PError(code: .protocolViolation, "unexpected \(message.kind) from a peer")
                }
                link.wakeup.signal()
            }
            try await writers.waitForAll()
        }
    }
    /// Verifies a chunk against the manifest, forwards it if it was handed out by a seeder,
    /// and writes it. A chunk handed out in pieces has had all but its `lastPiece`
    /// forwarded already: that one goes once the chunk verifies, and if it does not, the
    /// subscribers are told to drop the rest.
    /// - Throws: `P2PError` (`corrupt`) once a peer has sent `maximumBadChunks` bad chunks,
    ///   which drops it; a disk error ends the whole download (`run.abort`).
    func accept(
        _ bytes: ByteBuffer,
        chunk: Int,
        from id: PeerID,
        run: DownloadRun,
        as arrival: ChunkArrival,
        lastPiece: (offset: Int, bytes: ByteBuffer)? = nil
    ) async throws {
        guard run.manifest.verify(bytes, chunk: chunk) else {
            if arrival == .assigned && lastPiece != nil { self.relayHub.abort(chunk, of: run.manifest.id) }
            run.cancel(chunk, from: id)
            self.statistics?.recordRejected()
            let bad = run.recordBadChunk(from: id)
            self.logger.warning(
                "chunk failed verification",
                metadata: ["remote.peer.id": "\(id.short)", "chunk.index": "\(chunk)", "bad.count": "\(bad)"]
            )
            if bad >= self.configuration.maximumBadChunks {
                throw P2PError(code: .corrupt, "dropped after \(bad) bad chunks")
            }
            return
        }
        if arrival == .relayed {
            // Claimed before it is forwarded: a chunk that came twice goes on once.
            guard run.claimChunk(chunk, from: id) else { return }
            self.relayHub.forward(bytes, chunk: chunk, of: run.manifest.id, receivedFrom: id)
            try await self.write(bytes, chunk: chunk, from: id, run: run, as: arrival)
            return
        }
        if arrival == .assigned {
            if let piece = lastPiece {
                self.relayHub.forwardPiece(
                    piece.bytes,
                    chunk: chunk,
                    offset: piece.offset,
                    chunkLength: bytes.readableBytes,
                    of: run.manifest.id
                )
            } else {
                self.relayHub.forward(bytes, chunk: chunk, of: run.manifest.id)
            }
        }
        guard run.claimChunk(chunk, from: id) else { return }
        if arrival == .pulled, let relayer = run.relayOwed(chunk) {
            // Fetched in place of a relayer's forward: it goes on as that forward would have.
            self.relayHub.forward(bytes, chunk: chunk, of: run.manifest.id, receivedFrom: relayer)
        }
        try await self.write(bytes, chunk: chunk, from: id, run: run, as: arrival)
    }

    /// Writes a verified chunk claimed for writing, and counts it.
    private func write(
        _ bytes: ByteBuffer,
        chunk: Int,
        from id: PeerID,
        run: DownloadRun,
        as arrival: ChunkArrival
    ) async throws {
        do {
            try await run.file.write(bytes, chunk: chunk)
        } catch {
            run.unclaim(chunk, from: id)
            // A write cut short because the download ended (timeout, completion) is not a
            // disk failure; anything else is, and ends the whole download.
            if !Task.isCancelled { run.abort(error) }
            throw error
        }
        run.completed(chunk, bytes: bytes.readableBytes, from: id, as: arrival)
        self.statistics?.recordVerified(bytes: bytes.readableBytes, from: id)
    }
}
