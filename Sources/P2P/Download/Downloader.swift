import DequeModule
import Logging
import NIOCore
import NIOPosix
import Synchronization
import _NIOFileSystem

/// Downloads files from every peer that holds chunks of them (the seed's `request_file`
/// threads filling one shared chunk map, made real).
///
/// One task per peer keeps a window of chunk requests in flight on one connection; a
/// shared `ChunkScheduler` gives each the rarest chunk it can send. Every chunk is checked
/// against the manifest's SHA-256 before it is written; a peer that sends bad chunks more
/// than `maximumBadChunks` times is dropped; a peer that fails costs only its requests in
/// flight. On timeout the `.partial` and its record stay for the next attempt.
public final class Downloader: Sendable {
    /// Tuning.
    public struct Configuration: Sendable {
        /// Requests in flight per peer until its rate is known.
        public var initialWindow = 8
        /// The most requests in flight per peer.
        public var maximumWindow = 32
        /// How much of a peer's delivery the window covers (plus two requests): enough to
        /// keep a link busy, not so much that a shared uplink queues seconds of answers.
        public var windowLatency: Duration = .milliseconds(100)
        /// Bytes waiting to be forwarded to any one other downloader above which this peer
        /// asks a seeder for no more work (SPEC §7). With work handed out in pieces a
        /// chunk's forwarding starts as its first piece arrives, so the queue need not hold
        /// a chunk in reserve while the next one comes: 256 KiB is as fast as 512 KiB in a
        /// crowd of 15 (docs/benchmark-log.md), and leaves less to drain at the end.
        public var forwardingBacklogLimit = 256 << 10
        /// The piece length in which this peer asks a seeder for work while it forwards
        /// others' downloads (zero: whole chunks). It forwards each piece as it arrives and
        /// the last once the chunk has verified (SPEC §7: the unit forwarded need not be the
        /// unit verified).
        public var relayPieceLength = 64 << 10
        /// How long a chunk seen at another downloader may take to arrive relayed before it
        /// is asked for (see `ChunkScheduler`).
        public var relayGrace: Duration = .milliseconds(1500)
        /// The most other downloaders of a file this peer relays with (SPEC §12): a crowd
        /// larger than this plus one relays along `RelayOverlay`, each downloader to and
        /// from its partners only, and forwards what it got relayed on to partners that
        /// need it; a smaller one is a full mesh. Zero: a full mesh whatever the size.
        public var maximumRelayPartners = 16
        /// Bad chunks tolerated from one peer before it is dropped.
        public var maximumBadChunks = 3
        /// How long to wait for any one answer.
        public var answerTimeout: Duration = .seconds(15)
        /// How often to ask peers for their inventories again while downloading.
        public var refreshInterval: Duration = .milliseconds(500)
        /// Chunks being verified and written at once, per peer.
        public var writesInFlight = 4
        /// How long a name lookup waits for any one peer's inventory.
        public var inventoryTimeout: Duration = .seconds(3)
        /// How long a name lookup waits for the other peers' inventories once those in
        /// resolve the name: the rest are counted for the choice among files of one name
        /// only if they answer by then.
        public var lookupGrace: Duration = .milliseconds(100)

        /// The defaults.
        public init() {}
    }

    let store: ChunkStore
    let table: PeerTable
    let configuration: Configuration
    let settings: TransferSettings
    let relayHub: RelayHub
    /// Where verified and rejected chunks are counted, if anywhere.
    let statistics: TransferStatistics?
    var logger: Logger { self.settings.logger }
    var group: any EventLoopGroup { self.settings.group }

    /// Creates a downloader.
    /// - Parameters:
    ///   - store: where chunks go.
    ///   - table: the peers to download from.
    ///   - configuration: tuning.
    ///   - settings: how to connect to peers, and where to log.
    ///   - relayHub: where chunks handed out by a seeder are forwarded to other downloaders
    ///     (the peer's transfer server writes them out).
    ///   - statistics: where verified and rejected chunks are counted (the peer's counters).
    public init(
        store: ChunkStore,
        table: PeerTable,
        configuration: Configuration = Configuration(),
        settings: TransferSettings,
        relayHub: RelayHub = RelayHub(),
        statistics: TransferStatistics? = nil
    ) {
        self.relayHub = relayHub
        self.statistics = statistics
        self.store = store
        self.table = table
        self.configuration = configuration
        self.settings = settings
    }

    // MARK: Downloading

    /// Downloads a file from every peer that holds chunks of it.
    /// - Parameters:
    ///   - name: the file's name (or `nil` with `idPrefix`).
    ///   - idPrefix: hex digits the file id starts with, to pick among files of one name.
    ///   - timeout: give up after this long, keeping the partial file; `nil` for never.
    ///   - replaceExisting: whether a different file already at the name in the downloads
    ///     folder is replaced; otherwise the download refuses before it fetches anything.
    ///   - progress: called about five times a second.
    ///   - admit: called with the verified manifest before anything is written; what it
    ///     throws ends the download (a delivery checks the file is the one offered).
    /// - Returns: what was downloaded, from whom.
    /// - Throws: `P2PError`: `notFound`, `ambiguous` (several files of the name among the
    ///   peers that answered; a peer that had not answered within `lookupGrace` of the
    ///   first answers naming exactly one file is not counted), `fileExists` (another file
    ///   has the name here), `timedOut` (saying which chunks are missing and which peers
    ///   were tried), `corrupt` (the manifest names the file otherwise than the peers do),
    ///   `storage`.
    public func download(
        name: String?,
        idPrefix: String? = nil,
        timeout: Duration? = nil,
        replaceExisting: Bool = false,
        progress: @escaping @Sendable (DownloadProgress) -> Void = { _ in },
        admit: @Sendable (Manifest) throws -> Void = { _ in }
    ) async throws -> DownloadResult {
        let started = ContinuousClock.now
        let deadline = timeout.map { started + $0 }
        if let name { _ = try FileName(name) }

        // Find the file, waiting (until the deadline) for a peer that offers it.
        let file = try await self.lookUp(name: name, idPrefix: idPrefix, deadline: deadline)

        if let path = await self.store.path(of: file.id), let manifest = await self.store.manifest(for: file.id) {
            return DownloadResult(
                manifest: manifest,
                path: path,
                seconds: 0,
                bytesFromPeer: [:],
                chunksAlreadyHeld: manifest.chunkCount
            )
        }
        let manifest = try await self.fetchManifest(file, deadline: deadline)
        // The manifest is what the file id commits to; the name in an inventory is only
        // what a peer says. A file is written under the name asked for, or not at all.
        guard manifest.name == file.name else {
            throw P2PError(
                code: .corrupt,
                "the file offered as '\(file.name)' (id \(file.id.short)) is named '\(manifest.name)' by its manifest; "
                    + "refused"
            )
        }
        try admit(manifest)
        if !replaceExisting, let conflict = await self.store.conflict(for: manifest) {
            throw P2PError(
                code: .fileExists,
                "\(conflict), not the swarm's \(manifest.name) (id \(manifest.id.short)): "
                    + "move it away, or replace it with --replace"
            )
        }
        return try await self.assemble(
            manifest,
            holders: file.holders,
            started: started,
            deadline: deadline,
            replaceExisting: replaceExisting,
            progress: progress
        )
    }

    /// Fetches the chunks of a file whose manifest is verified, from every peer that holds
    /// any, and finishes it: read back whole, verified, moved into place.
    /// - Parameters:
    ///   - manifest: the verified manifest.
    ///   - holders: what the swarm's inventories said each peer holds.
    ///   - started: when the download began, for its duration.
    ///   - deadline: give up then, keeping the partial file.
    ///   - replaceExisting: whether a different file at the name is replaced.
    ///   - destination: where the file goes instead of its name in the downloads folder.
    ///   - progress: called about five times a second.
    /// - Returns: what was downloaded, from whom.
    /// - Throws: `P2PError` as `download` does.
    func assemble(
        _ manifest: Manifest,
        holders: [PeerID: ChunkBitmap],
        started: ContinuousClock.Instant,
        deadline: ContinuousClock.Instant?,
        replaceExisting: Bool = false,
        destination: FilePath? = nil,
        progress: @escaping @Sendable (DownloadProgress) -> Void
    ) async throws -> DownloadResult {
        let chunkFile = try await self.store.beginDownload(manifest)
        let alreadyHeld = await chunkFile.bitmap.setCount
        self.logger.info(
            "download started",
            metadata: [
                "file.id": "\(manifest.id.short)", "file.name": "\(manifest.name)", "file.size": "\(manifest.size)",
                "chunks.held": "\(alreadyHeld)", "chunks.total": "\(manifest.chunkCount)",
            ]
        )
        // Relayed chunks are recorded from the first, so that peers that subscribe late
        // learn which ones they missed.
        self.relayHub.beginDownload(of: manifest.id, chunkCount: manifest.chunkCount)
        defer { self.relayHub.endDownload(of: manifest.id) }
        var bytesFromPeer: [PeerID: Int64] = [:]
        var arrivals: [ChunkArrival: Int] = [:]
        var path: FilePath? = nil
        // Chunks that changed on disk after they were verified are caught when the file is
        // read back whole, and fetched once more; a disk that keeps changing them fails.
        for pass in 1...Self.verificationPasses {
            let run = DownloadRun(
                manifest: manifest,
                file: chunkFile,
                have: await chunkFile.bitmap,
                relayGrace: self.configuration.relayGrace
            )
            // What the swarm's inventories said, so that the first requests already know
            // who holds what (and whether one seeder is shared by a crowd).
            for (peer, bitmap) in holders { run.update(peer, holding: bitmap) }
            do {
                try await self.fetchChunks(run, deadline: deadline, progress: progress)
            } catch {
                await self.store.suspendDownload(manifest.id)
                throw error
            }
            guard run.isComplete else {
                await self.store.suspendDownload(manifest.id)
                if let failure = run.failure { throw failure }
                try Task.checkCancellation()
                throw run.incompleteError()
            }
            bytesFromPeer.merge(run.bytesFromPeer, uniquingKeysWith: +)
            arrivals.merge(run.arrivals, uniquingKeysWith: +)
            do {
                path = try await self.store.finishDownload(
                    manifest.id,
                    replacingExisting: replaceExisting,
                    at: destination
                )
                break
            } catch let error as P2PError where error.code == .corrupt && pass < Self.verificationPasses {
                self.logger.warning(
                    "fetching again what changed on disk",
                    metadata: ["file.id": "\(manifest.id.short)", "error": "\(error)"]
                )
            }
        }
        guard let path else { throw P2PError(code: .storage, "\(manifest.name) could not be verified on disk") }
        let seconds = (ContinuousClock.now - started).seconds
        self.logger.info(
            "download complete",
            metadata: [
                "file.id": "\(manifest.id.short)", "file.path": "\(path)", "seconds": "\(seconds)",
                "chunks.pulled": "\(arrivals[.pulled] ?? 0)", "chunks.relayed": "\(arrivals[.relayed] ?? 0)",
                "chunks.assigned": "\(arrivals[.assigned] ?? 0)",
                "relay.queued.peak": "\(self.relayHub.peakQueuedBytes)",
            ]
        )
        return DownloadResult(
            manifest: manifest,
            path: path,
            seconds: seconds,
            bytesFromPeer: bytesFromPeer,
            chunksAlreadyHeld: alreadyHeld
        )
    }

    /// Signals `wakeup` whenever a peer joins, until cancelled. The caller makes `joins`
    /// (`PeerTable.events()`) before it first looks at the table, so that no join falls
    /// between that look and this watch.
    static func signal(_ wakeup: Wakeup, onEachJoinIn joins: AsyncStream<PeerEvent>) async {
        for await event in joins { if case .joined = event { wakeup.signal() } }
    }

    /// The file a name (or id prefix) means among what the swarm's peers offer, looked for
    /// as `get` looks: again as peers are heard, for `LookupPatience.defaultPatience`.
    /// - Parameters:
    ///   - name: the file's name, or `nil` to go by id.
    ///   - idPrefix: hex digits the id starts with, if given.
    /// - Returns: the file.
    /// - Throws: `P2PError` (`notFound`, `ambiguous`).
    public func find(name: String?, idPrefix: String?) async throws -> SwarmFile {
        try await self.lookUp(name: name, idPrefix: idPrefix, deadline: nil)
    }

    /// The manifest of a file in the swarm, from this peer's store or from a peer that
    /// holds the file (checked against the file id, and remembered), without downloading
    /// anything else.
    /// - Parameter file: the file, as the swarm's inventories name it.
    /// - Returns: the verified manifest.
    /// - Throws: `P2PError` (`notFound`) when no peer gives a valid one in time.
    public func manifest(of file: SwarmFile) async throws -> Manifest {
        try await self.fetchManifest(file, deadline: nil)
    }

    /// How many times a download reads its file back whole before it gives up on a disk
    /// that changes what was written.
    static let verificationPasses = 2

    /// Whom to ask for a file's manifest, in order: peers that hold the whole file, then
    /// those whose inventory lists it (they are downloading it), then the rest (who may
    /// have got it since the lookup), each group in the order given.
    ///
    /// Why: peers are asked one at a time. In a crowd that starts together most known
    /// peers are other downloaders still starting, and asking them first cost a round trip
    /// each (on loaded CPUs) before the seeder was reached.
    static func manifestSources(_ peers: [KnownPeer], holders: [PeerID: ChunkBitmap]) -> [KnownPeer] {
        func rank(_ peer: KnownPeer) -> Int {
            guard let held = holders[peer.id] else { return 2 }
            return held.isComplete ? 0 : 1
        }
        return peers.enumerated()
            .sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }
            .map(\.element)
    }

    /// Runs one worker per peer until every chunk is held, the deadline passes, or no
    /// peer is left; new peers get a worker as they appear. Nothing here polls on a fixed
    /// beat while work is going on: the loop wakes when a worker ends, a peer joins or the
    /// download finishes, and at least every quarter second.
    private func fetchChunks(
        _ run: DownloadRun,
        deadline: ContinuousClock.Instant?,
        progress: @escaping @Sendable (DownloadProgress) -> Void
    ) async throws {
        guard !run.isComplete else { return }
        let eventLoop = self.group.next()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Progress and the deadline.
                var lastBytes = run.bytesHeld
                var lastTime = ContinuousClock.now
                var rate = 0.0
                while !run.isFinished && !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(200))
                    let now = ContinuousClock.now
                    if let deadline, now >= deadline {
                        run.timeOut()
                        return
                    }
                    let bytes = run.bytesHeld
                    let elapsed = (now - lastTime).seconds
                    if elapsed > 0 {
                        let instant = Double(bytes - lastBytes) / elapsed
                        rate = rate == 0 ? instant : 0.7 * rate + 0.3 * instant
                    }
                    lastBytes = bytes
                    lastTime = now
                    progress(
                        DownloadProgress(
                            name: run.manifest.name.value,
                            bytesHeld: bytes,
                            totalBytes: Int64(run.manifest.size),
                            bytesPerSecond: rate,
                            activePeers: run.activePeers
                        )
                    )
                }
            }
            // A peer that joins gets its worker at once (the loop below wakes).
            let joins = self.table.events()
            group.addTask { await Self.signal(run.mainWakeup, onEachJoinIn: joins) }
            // Starts a worker for every peer without one, until done. Without a deadline,
            // a download with no peer at all for a minute gives up.
            var lastWorker = ContinuousClock.now
            // A cancelled task's waits return at once: without the check, this loop spun.
            while !run.isFinished && !Task.isCancelled {
                let peers = self.table.servingPeers()
                if let membership = run.see(
                    peers.map(\.id),
                    me: self.relayHub.me,
                    maximumPartners: self.configuration.maximumRelayPartners
                ) {
                    self.relayHub.setMembership(membership, of: run.manifest.id)
                    // A crowd past the partner budget is worth a line; a full mesh is the rule.
                    self.logger.log(
                        level: membership.isFullMesh ? .debug : .info,
                        "relay overlay",
                        metadata: [
                            "file.id": "\(run.manifest.id.short)", "downloaders": "\(membership.members.count)",
                            "overlay": "\(membership.overlay.bases.map(String.init).joined(separator: "x"))",
                            "partners": "\(membership.partners.count)",
                        ]
                    )
                }
                for peer in peers where run.claimWorker(peer.id) {
                    group.addTask {
                        await self.work(with: peer, on: run)
                        run.releaseWorker(peer.id)
                    }
                }
                if run.workerCount > 0 { lastWorker = .now }
                if deadline == nil && ContinuousClock.now - lastWorker > Self.noPeerPatience { run.timeOut() }
                await run.mainWakeup.wait(atMost: .milliseconds(250), on: eventLoop)
            }
            group.cancelAll()
        }
    }

    /// How long a download without a deadline waits with no peer at all.
    static let noPeerPatience: Duration = .seconds(60)
}
