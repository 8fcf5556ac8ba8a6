import Logging
import NIOCore
import NIOPosix
import Synchronization
import _NIOFileSystem

/// How far a download has come, for progress lines.
public struct DownloadProgress: Sendable {
    /// The file.
    public var name: String
    /// Bytes held and verified.
    public var bytesHeld: Int64
    /// The file's size.
    public var totalBytes: Int64
    /// Bytes per second over the last few seconds.
    public var bytesPerSecond: Double
    /// Peers sending chunks now.
    public var activePeers: Int

    /// Seconds left at the current rate, if it can be told.
    public var secondsLeft: Double? {
        guard self.bytesPerSecond > 0 else { return nil }
        return Double(self.totalBytes - self.bytesHeld) / self.bytesPerSecond
    }
}

/// What a finished download did.
public struct DownloadResult: Sendable {
    /// The file's manifest.
    public var manifest: Manifest
    /// Where the file is now.
    public var path: FilePath
    /// Seconds from start to the verified file.
    public var seconds: Double
    /// Bytes received from each peer in this run.
    public var bytesFromPeer: [PeerID: Int64]
    /// Chunks that were already held when the download started (resumed or cached).
    public var chunksAlreadyHeld: Int
}

/// A file in the swarm, as the peers' inventories describe it.
public struct SwarmFile: Sendable {
    /// The file id.
    public var id: FileID
    /// The name.
    public var name: FileName
    /// The size.
    public var size: UInt64
    /// The number of chunks.
    public var chunkCount: Int
    /// Which peers hold how many chunks.
    public var holders: [PeerID: ChunkBitmap]
    /// Chunks held by at least one peer.
    public var availableChunks: Int
}

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
        /// Requests in flight per peer at first; faster peers earn more, up to `maximumWindow`.
        public var initialWindow = 8
        /// The most requests in flight per peer.
        public var maximumWindow = 32
        /// Bad chunks tolerated from one peer before it is dropped.
        public var maximumBadChunks = 3
        /// How long to wait for any one answer.
        public var answerTimeout: Duration = .seconds(15)
        /// How often to ask peers for their inventories again while downloading.
        public var refreshInterval: Duration = .milliseconds(500)
        /// Chunks being verified and written at once, per peer.
        public var writesInFlight = 4

        /// The defaults.
        public init() {}
    }

    private let store: ChunkStore
    private let table: PeerTable
    private let configuration: Configuration
    private let maximumPayloadLength: Int
    private let networkKey: NetworkKey?
    private let group: any EventLoopGroup
    private let logger: Logger

    /// Creates a downloader.
    /// - Parameters:
    ///   - store: where chunks go.
    ///   - table: the peers to download from.
    ///   - configuration: tuning.
    ///   - maximumPayloadLength: the largest frame payload accepted.
    ///   - networkKey: the swarm's key, if any.
    ///   - group: the event loops.
    ///   - logger: where to log.
    public init(
        store: ChunkStore,
        table: PeerTable,
        configuration: Configuration = Configuration(),
        maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength,
        networkKey: NetworkKey? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.networkKey = networkKey
        self.store = store
        self.table = table
        self.configuration = configuration
        self.maximumPayloadLength = maximumPayloadLength
        self.group = group
        self.logger = logger
    }

    // MARK: The swarm's files

    /// Asks every serving peer for its inventory, at once.
    /// - Parameter timeout: how long to wait for each peer.
    /// - Returns: each answering peer's inventory.
    public func inventories(timeout: Duration = .seconds(3)) async -> [(KnownPeer, [InventoryEntry])] {
        await Self.inventories(
            of: self.table.servingPeers(),
            timeout: timeout,
            maximumPayloadLength: self.maximumPayloadLength,
            networkKey: self.networkKey,
            group: self.group,
            logger: self.logger
        )
    }

    /// Asks peers for their inventories, at once.
    /// - Parameters:
    ///   - peers: whom to ask.
    ///   - timeout: how long to wait for each peer.
    ///   - maximumPayloadLength: the largest frame payload accepted.
    ///   - group: the event loops.
    ///   - logger: where to log peers that do not answer.
    /// - Returns: each answering peer's inventory, by peer id.
    public static func inventories(
        of peers: [KnownPeer],
        timeout: Duration = .seconds(3),
        maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength,
        networkKey: NetworkKey? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) async -> [(KnownPeer, [InventoryEntry])] {
        await withTaskGroup(of: (KnownPeer, [InventoryEntry])?.self) { tasks in
            for peer in peers {
                tasks.addTask {
                    do {
                        let entries = try await withTimeout(timeout, "the inventory of \(peer.id.short)") {
                            try await PeerSession.connect(
                                to: peer.transferAddress,
                                maximumPayloadLength: maximumPayloadLength,
                                answerTimeout: timeout,
                                networkKey: networkKey,
                                group: group
                            ) { session in try await session.inventory() }
                        }
                        return (peer, entries)
                    } catch {
                        logger.debug(
                            "no inventory from peer",
                            metadata: ["remote.peer.id": "\(peer.id.short)", "error": "\(error)"]
                        )
                        return nil
                    }
                }
            }
            var results: [(KnownPeer, [InventoryEntry])] = []
            for await result in tasks {
                if let result { results.append(result) }
            }
            return results.sorted { $0.0.id < $1.0.id }
        }
    }

    /// The files in the swarm and here, with who holds which chunks.
    /// - Parameters:
    ///   - inventories: the peers' inventories, from `inventories()`.
    ///   - local: this peer's own inventory and id, counted as a holder.
    /// - Returns: one entry per file id, by name.
    public static func swarmFiles(
        _ inventories: [(KnownPeer, [InventoryEntry])],
        local: (PeerID, [InventoryEntry])? = nil
    ) -> [SwarmFile] {
        var files: [FileID: SwarmFile] = [:]
        var all = inventories.map { ($0.0.id, $0.1) }
        if let local { all.append(local) }
        for (peer, entries) in all {
            for entry in entries {
                var file =
                    files[entry.id]
                    ?? SwarmFile(
                        id: entry.id,
                        name: entry.name,
                        size: entry.size,
                        chunkCount: entry.bitmap.count,
                        holders: [:],
                        availableChunks: 0
                    )
                guard entry.bitmap.count == file.chunkCount else { continue }
                file.holders[peer] = entry.bitmap
                files[entry.id] = file
            }
        }
        return files.values.map { file in
            var file = file
            var union = ChunkBitmap(count: file.chunkCount)
            for bitmap in file.holders.values {
                for index in bitmap.indices { union.insert(index) }
            }
            file.availableChunks = union.setCount
            return file
        }.sorted { ($0.name, $0.id) < ($1.name, $1.id) }
    }

    /// Picks the file a name (or id prefix) means.
    /// - Parameters:
    ///   - name: the file name, or `nil` to go by id alone.
    ///   - idPrefix: hex digits the id must start with, if given.
    ///   - files: the swarm's files.
    /// - Returns: the file: the one most peers hold, if several match the name.
    /// - Throws: `P2PError` (`notFound` or `ambiguous`) saying what matched.
    public static func resolve(name: String?, idPrefix: String?, in files: [SwarmFile]) throws -> SwarmFile {
        var matches = files
        if let name { matches = matches.filter { $0.name.value == name } }
        if let idPrefix {
            let prefix = idPrefix.lowercased()
            matches = matches.filter { $0.id.description.hasPrefix(prefix) }
        }
        let what = [name.map { "'\($0)'" }, idPrefix.map { "id \($0)…" }].compactMap { $0 }.joined(separator: " with ")
        guard !matches.isEmpty else {
            throw P2PError(code: .notFound, "no peer offers \(what)")
        }
        let ranked = matches.sorted { $0.holders.count > $1.holders.count }
        if ranked.count > 1 && ranked[0].holders.count == ranked[1].holders.count {
            let choices = ranked.map { "\($0.id.short) (\($0.size) bytes, \($0.holders.count) peers)" }
            throw P2PError(
                code: .ambiguous,
                "\(what) names \(ranked.count) different files: \(choices.joined(separator: ", ")); pick one with --id"
            )
        }
        return ranked[0]
    }

    // MARK: Downloading

    /// Downloads a file from every peer that holds chunks of it.
    /// - Parameters:
    ///   - name: the file's name (or `nil` with `idPrefix`).
    ///   - idPrefix: hex digits the file id starts with, to pick among files of one name.
    ///   - timeout: give up after this long, keeping the `.partial`; `nil` for never.
    ///   - progress: called about five times a second.
    /// - Returns: what was downloaded, from whom.
    /// - Throws: `P2PError`: `notFound`, `ambiguous`, `timedOut` (saying which chunks
    ///   are missing and which peers were tried), `storage`.
    public func download(
        name: String?,
        idPrefix: String? = nil,
        timeout: Duration? = nil,
        progress: @escaping @Sendable (DownloadProgress) -> Void = { _ in }
    ) async throws -> DownloadResult {
        let started = ContinuousClock.now
        let deadline = timeout.map { started + $0 }
        if let name { _ = try FileName(name) }

        // Find the file, waiting (until the deadline) for a peer that offers it.
        var file: SwarmFile? = nil
        var lastError: (any Error)? = nil
        let local = await self.store.inventory()
        for attempt in 0..<41 {
            let files = Self.swarmFiles(await self.inventories(), local: (PeerID(high: 0, low: 0), local))
            do {
                file = try Self.resolve(name: name, idPrefix: idPrefix, in: files)
                break
            } catch let error as P2PError where error.code == .notFound {
                lastError = error
            }
            // A peer that just started hears the swarm's answers within milliseconds: ask
            // again soon, then less often, for about five seconds in all.
            let now = ContinuousClock.now
            guard attempt < 40, deadline.map({ now < $0 }) ?? true else { break }
            try await Task.sleep(for: .milliseconds(attempt < 20 ? 50 : 200))
        }
        guard let file else { throw lastError ?? P2PError(code: .notFound, "file not found") }

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
        let chunkFile = try await self.store.beginDownload(manifest)
        let alreadyHeld = await chunkFile.bitmap.setCount
        self.logger.info(
            "download started",
            metadata: [
                "file.id": "\(manifest.id.short)", "file.name": "\(manifest.name)", "file.size": "\(manifest.size)",
                "chunks.held": "\(alreadyHeld)", "chunks.total": "\(manifest.chunkCount)",
            ]
        )
        let run = DownloadRun(manifest: manifest, file: chunkFile, have: await chunkFile.bitmap)
        do {
            try await self.fetchChunks(run, deadline: deadline, progress: progress)
        } catch {
            await self.store.suspendDownload(manifest.id)
            throw error
        }
        guard run.isComplete else {
            await self.store.suspendDownload(manifest.id)
            if let failure = run.failure { throw failure }
            throw run.incompleteError()
        }
        let path = try await self.store.finishDownload(manifest.id)
        let seconds =
            Double((ContinuousClock.now - started).components.seconds)
            + Double((ContinuousClock.now - started).components.attoseconds) / 1e18
        self.logger.info(
            "download complete",
            metadata: ["file.id": "\(manifest.id.short)", "file.path": "\(path)", "seconds": "\(seconds)"]
        )
        return DownloadResult(
            manifest: manifest,
            path: path,
            seconds: seconds,
            bytesFromPeer: run.bytesFromPeer,
            chunksAlreadyHeld: alreadyHeld
        )
    }

    /// Gets the file's manifest from a peer that holds it, checking that it hashes to the
    /// file id. A peer whose manifest does not is not asked again; peers that appear while
    /// this runs are asked too, for up to `manifestPatience` (or until the deadline).
    private func fetchManifest(_ file: SwarmFile, deadline: ContinuousClock.Instant?) async throws -> Manifest {
        if let known = await self.store.manifest(for: file.id) { return known }
        var asked = Set<PeerID>()
        let giveUp = min(deadline ?? .now + Self.manifestPatience, .now + Self.manifestPatience)
        repeat {
            for peer in self.table.servingPeers() where !asked.contains(peer.id) {
                asked.insert(peer.id)
                do {
                    let manifest = try await PeerSession.connect(
                        to: peer.transferAddress,
                        maximumPayloadLength: self.maximumPayloadLength,
                        answerTimeout: self.configuration.answerTimeout,
                        networkKey: self.networkKey,
                        group: self.group
                    ) { session in try await session.manifest(for: file.id) }
                    if let manifest {
                        await self.store.remember(manifest)
                        return manifest
                    }
                } catch {
                    self.logger.warning(
                        "no valid manifest from peer",
                        metadata: ["remote.peer.id": "\(peer.id.short)", "error": "\(error)"]
                    )
                }
            }
            try await Task.sleep(for: .milliseconds(250))
        } while ContinuousClock.now < giveUp
        throw P2PError(code: .notFound, "no peer gave a valid manifest for \(file.name) (\(file.id.short))")
    }

    /// How long to look for a peer with a valid manifest.
    static let manifestPatience: Duration = .seconds(10)

    /// Runs one worker per useful peer until every chunk is held, the deadline passes,
    /// or no peer is left; new peers get a worker as they appear.
    private func fetchChunks(
        _ run: DownloadRun,
        deadline: ContinuousClock.Instant?,
        progress: @escaping @Sendable (DownloadProgress) -> Void
    ) async throws {
        guard !run.isComplete else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Progress and the deadline.
                var lastBytes = run.bytesHeld
                var lastTime = ContinuousClock.now
                var rate = 0.0
                while !run.isComplete && !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(200))
                    let now = ContinuousClock.now
                    if let deadline, now >= deadline {
                        run.timeOut()
                        return
                    }
                    let bytes = run.bytesHeld
                    let elapsed =
                        Double((now - lastTime).components.attoseconds) / 1e18
                        + Double((now - lastTime).components.seconds)
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
            // Starts a worker for every peer without one, until done.
            var idleRounds = 0
            while !run.isFinished {
                var started = 0
                for peer in self.table.servingPeers() where run.claimWorker(peer.id) {
                    started += 1
                    group.addTask {
                        await self.work(with: peer, on: run)
                        run.releaseWorker(peer.id)
                    }
                }
                // Nobody is working and nobody new came: wait, bounded by the deadline or,
                // without one, by giving up after about a minute of no peer at all.
                idleRounds = run.workerCount == 0 && started == 0 ? idleRounds + 1 : 0
                if idleRounds > (deadline == nil ? 240 : Int.max) { run.timeOut() }
                try? await Task.sleep(for: .milliseconds(250))
            }
            group.cancelAll()
        }
    }

    /// One peer's worker: asks for its inventory, then keeps a window of chunk requests
    /// in flight, verifying and writing every chunk that comes back.
    private func work(with peer: KnownPeer, on run: DownloadRun) async {
        let id = peer.id
        do {
            try await PeerSession.connect(
                to: peer.transferAddress,
                maximumPayloadLength: self.maximumPayloadLength,
                answerTimeout: self.configuration.answerTimeout,
                networkKey: self.networkKey,
                group: self.group
            ) { session in
                var inFlight: [Int] = []
                var window = self.configuration.initialWindow
                var lastRefresh = ContinuousClock.now - self.configuration.refreshInterval
                run.markTried(peer)
                defer { run.cancelAll(inFlight, from: id) }
                // Chunks are verified and written by child tasks, so that hashing and disk
                // writes overlap with receiving the next chunks (and use the other cores).
                try await withThrowingTaskGroup(of: Void.self) { writers in
                    var writing = 0
                    while !run.isFinished {
                        if inFlight.isEmpty && ContinuousClock.now - lastRefresh >= self.configuration.refreshInterval {
                            // Between requests, so no answer is outstanding on the connection.
                            let entries = try await session.inventory()
                            lastRefresh = ContinuousClock.now
                            guard let entry = entries.first(where: { $0.id == run.manifest.id }) else {
                                run.update(id, holding: ChunkBitmap(count: run.manifest.chunkCount))
                                break
                            }
                            run.update(id, holding: entry.bitmap)
                        }
                        var requests: [TransferMessage] = []
                        while inFlight.count < window, let chunk = run.next(for: id) {
                            inFlight.append(chunk)
                            requests.append(.chunkRequest(run.manifest.id, chunk: chunk))
                        }
                        if !requests.isEmpty { try await session.send(requests) }
                        guard let expected = inFlight.first else {
                            // Nothing to ask this peer for now; it may get more later.
                            guard !run.isFinished else { break }
                            try await Task.sleep(for: .milliseconds(100))
                            continue
                        }
                        let answer = try await session.receive()
                        inFlight.removeFirst()
                        switch answer {
                        case .chunkData(let fileID, let chunk, let bytes)
                        where fileID == run.manifest.id && chunk == expected:
                            if writing >= self.configuration.writesInFlight {
                                try await writers.next()
                                writing -= 1
                            }
                            writing += 1
                            writers.addTask { try await self.accept(bytes, chunk: chunk, from: id, run: run) }
                            window = min(self.configuration.maximumWindow, window + 1)
                        case .failure(_, let chunk, _, _) where chunk == expected:
                            run.lacks(chunk, peer: id)
                        default:
                            throw P2PError(code: .protocolViolation, "answered chunk \(expected) with something else")
                        }
                    }
                    try await writers.waitForAll()
                }
            }
        } catch {
            if !run.isFinished {
                self.logger.info(
                    "stopped downloading from peer",
                    metadata: ["remote.peer.id": "\(id.short)", "error": "\(error)"]
                )
            }
            run.remove(id, dropped: (error as? P2PError)?.code == .corrupt)
        }
    }
}

extension Downloader {
    /// Verifies a chunk against the manifest and writes it.
    /// - Throws: `P2PError` (`corrupt`) once a peer has sent `maximumBadChunks` bad chunks,
    ///   which drops it; a disk error ends the whole download (`run.abort`).
    fileprivate func accept(_ bytes: ByteBuffer, chunk: Int, from id: PeerID, run: DownloadRun) async throws {
        guard run.manifest.verify(bytes, chunk: chunk) else {
            run.cancel(chunk, from: id)
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
        guard run.claimChunk(chunk, from: id) else { return }
        do {
            try await run.file.write(bytes, chunk: chunk)
        } catch {
            run.unclaim(chunk, from: id)
            // A write cut short because the download ended (timeout, completion) is not a
            // disk failure; anything else is, and ends the whole download.
            if !Task.isCancelled { run.abort(error) }
            throw error
        }
        run.completed(chunk, bytes: bytes.readableBytes, from: id)
    }
}

/// The shared state of one download: the scheduler, the counters, who is working.
final class DownloadRun: Sendable {
    let manifest: Manifest
    let file: ChunkFile

    private struct State {
        var scheduler: ChunkScheduler
        var bytesFromPeer: [PeerID: Int64] = [:]
        var bytesHeld: Int64
        var workers: Set<PeerID> = []
        var dropped: Set<PeerID> = []
        var tried: [PeerID: String] = [:]
        var badChunks: [PeerID: Int] = [:]
        /// Chunks claimed by a worker that is writing them, so a duplicate is not written twice.
        var writing: Set<Int> = []
        var timedOut = false
        /// An error that ends the whole download, such as a full disk.
        var failure: (any Error)? = nil
        /// When a peer whose worker ended may get a new one.
        var retryAfter: [PeerID: ContinuousClock.Instant] = [:]
        /// The pause before the next retry of each peer.
        var backoff: [PeerID: Duration] = [:]
    }

    private let state: Mutex<State>

    init(manifest: Manifest, file: ChunkFile, have: ChunkBitmap) {
        self.manifest = manifest
        self.file = file
        let held = have.indices.reduce(Int64(0)) { $0 + Int64(manifest.length(ofChunk: $1)) }
        self.state = Mutex(State(scheduler: ChunkScheduler(have: have), bytesHeld: held))
    }

    var isComplete: Bool { self.state.withLock { $0.scheduler.isComplete } }
    var isFinished: Bool {
        self.state.withLock { $0.scheduler.isComplete || $0.timedOut || $0.failure != nil }
    }
    var failure: (any Error)? { self.state.withLock { $0.failure } }

    func abort(_ error: any Error) {
        self.state.withLock { if $0.failure == nil { $0.failure = error } }
    }

    func unclaim(_ chunk: Int, from peer: PeerID) {
        self.state.withLock { state in
            state.writing.remove(chunk)
            state.scheduler.cancel(chunk, from: peer)
        }
    }
    var bytesHeld: Int64 { self.state.withLock { $0.bytesHeld } }
    var bytesFromPeer: [PeerID: Int64] { self.state.withLock { $0.bytesFromPeer } }
    var activePeers: Int { self.state.withLock { $0.workers.count } }
    var workerCount: Int { self.state.withLock { $0.workers.count } }

    func timeOut() { self.state.withLock { $0.timedOut = true } }

    func claimWorker(_ peer: PeerID) -> Bool {
        self.state.withLock { state in
            guard !state.dropped.contains(peer), !state.workers.contains(peer) else { return false }
            if let retry = state.retryAfter[peer], ContinuousClock.now < retry { return false }
            state.workers.insert(peer)
            return true
        }
    }

    /// A worker ended: the peer gets a new one only after a pause that doubles, from half
    /// a second up to eight, each time its worker ends without finishing the download, so
    /// an unreachable peer or one without the file is not asked in a tight loop.
    func releaseWorker(_ peer: PeerID) {
        self.state.withLock { state in
            state.workers.remove(peer)
            let pause = min(state.backoff[peer].map { $0 * 2 } ?? .milliseconds(500), .seconds(8))
            state.backoff[peer] = pause
            state.retryAfter[peer] = ContinuousClock.now + pause
        }
    }

    func markTried(_ peer: KnownPeer) {
        self.state.withLock { $0.tried[peer.id] = peer.transferAddressDescription }
    }

    func update(_ peer: PeerID, holding: ChunkBitmap) {
        self.state.withLock { $0.scheduler.update(peer, holding: holding) }
    }

    func next(for peer: PeerID) -> Int? { self.state.withLock { $0.scheduler.next(for: peer) } }

    func cancel(_ chunk: Int, from peer: PeerID) { self.state.withLock { $0.scheduler.cancel(chunk, from: peer) } }

    func cancelAll(_ chunks: [Int], from peer: PeerID) {
        self.state.withLock { state in
            for chunk in chunks { state.scheduler.cancel(chunk, from: peer) }
        }
    }

    func lacks(_ chunk: Int, peer: PeerID) { self.state.withLock { $0.scheduler.lacks(chunk, peer: peer) } }

    /// Claims a verified chunk for writing; false if it is held or being written already.
    func claimChunk(_ chunk: Int, from peer: PeerID) -> Bool {
        self.state.withLock { state in
            guard !state.scheduler.have.contains(chunk), !state.writing.contains(chunk) else {
                state.scheduler.cancel(chunk, from: peer)
                return false
            }
            state.writing.insert(chunk)
            return true
        }
    }

    func completed(_ chunk: Int, bytes: Int, from peer: PeerID) {
        self.state.withLock { state in
            state.writing.remove(chunk)
            if state.scheduler.completed(chunk, from: peer) {
                state.bytesHeld += Int64(bytes)
            }
            state.bytesFromPeer[peer, default: 0] += Int64(bytes)
        }
    }

    func recordBadChunk(from peer: PeerID) -> Int {
        self.state.withLock { state in
            state.badChunks[peer, default: 0] += 1
            return state.badChunks[peer]!
        }
    }

    func remove(_ peer: PeerID, dropped: Bool) {
        self.state.withLock { state in
            state.scheduler.remove(peer)
            if dropped { state.dropped.insert(peer) }
        }
    }

    /// The error for a download that ended without every chunk: which are missing, and
    /// which peers were tried.
    func incompleteError() -> P2PError {
        self.state.withLock { state in
            let missing = state.scheduler.missing
            let tried = state.tried.sorted { $0.key < $1.key }.map { "\($0.key.short) at \($0.value)" }
            let triedText = tried.isEmpty ? "no peer had it" : "tried \(tried.joined(separator: ", "))"
            return P2PError(
                code: .timedOut,
                "\(self.manifest.name): \(missing.count) of \(self.manifest.chunkCount) chunks missing "
                    + "(\(Self.ranges(missing))); \(triedText); "
                    + "kept \(self.file.dataPath), the next download resumes from it"
            )
        }
    }

    /// "0-3, 7, 9-12" for a sorted list of chunk numbers, shortened past 20 ranges.
    static func ranges(_ sorted: [Int]) -> String {
        var parts: [String] = []
        var index = 0
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return parts.count > 20 ? parts.prefix(20).joined(separator: ", ") + ", …" : parts.joined(separator: ", ")
    }
}
