import DequeModule
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
    /// Peers that have sent chunks so far: the count the final summary gives.
    public var activePeers: Int

    /// Seconds left at the current rate, if it can be told: not while less than a byte a
    /// second arrives (a stalled source), when any figure would be meaningless.
    public var secondsLeft: Double? {
        guard self.bytesPerSecond >= 1 else { return nil }
        return Double(max(0, self.totalBytes - self.bytesHeld)) / self.bytesPerSecond
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
        /// a chunk in reserve while the next one comes: 256 KiB here was as fast as 512 KiB
        /// in a crowd of 15 (docs/benchmark-log.md, session 11), and leaves less to drain at the end.
        public var forwardingBacklogLimit = 256 << 10
        /// The piece length in which this peer asks a seeder for work while it forwards
        /// others' downloads (zero: whole chunks). It forwards each piece as it arrives and
        /// the last once the chunk has verified (SPEC §7: the unit forwarded need not be the
        /// unit verified).
        public var relayPieceLength = 64 << 10
        /// How long a chunk seen at another downloader may take to arrive relayed before it
        /// is asked for (see `ChunkScheduler`).
        public var relayGrace: Duration = .milliseconds(1500)
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

    private let store: ChunkStore
    private let table: PeerTable
    private let configuration: Configuration
    private let maximumPayloadLength: Int
    private let networkKey: NetworkKey?
    private let group: any EventLoopGroup
    private let relayHub: RelayHub
    private let logger: Logger

    /// Creates a downloader.
    /// - Parameters:
    ///   - store: where chunks go.
    ///   - table: the peers to download from.
    ///   - configuration: tuning.
    ///   - maximumPayloadLength: the largest frame payload accepted.
    ///   - networkKey: the swarm's key, if any.
    ///   - group: the event loops.
    ///   - relayHub: where chunks handed out by a seeder are forwarded to other downloaders
    ///     (the peer's transfer server writes them out).
    ///   - logger: where to log.
    public init(
        store: ChunkStore,
        table: PeerTable,
        configuration: Configuration = Configuration(),
        maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength,
        networkKey: NetworkKey? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        relayHub: RelayHub = RelayHub(),
        logger: Logger
    ) {
        self.networkKey = networkKey
        self.relayHub = relayHub
        self.store = store
        self.table = table
        self.configuration = configuration
        self.maximumPayloadLength = maximumPayloadLength
        self.group = group
        self.logger = logger
    }

    // MARK: The swarm's files

    /// Asks peers for their inventories, at once.
    ///
    /// With `enough`, gathering may end before every peer has answered: once the answers
    /// received make `enough` true, the peers still to answer get `grace` more and are then
    /// given up (their connections closed, even mid-connect). So a peer that never answers,
    /// or a host that is gone but still in the table, costs the caller `grace`, not
    /// `timeout`.
    /// - Parameters:
    ///   - peers: whom to ask.
    ///   - timeout: how long to wait for each peer, connecting included.
    ///   - enough: whether the answers so far settle what the caller wants to know; called
    ///     on the calling task after each answer, with the answers in order of arrival.
    ///   - grace: how long the others may take once they do.
    ///   - maximumPayloadLength: the largest frame payload accepted.
    ///   - group: the event loops.
    ///   - logger: where to log peers that do not answer, and peers given up.
    /// - Returns: the inventory of each peer that answered in time, by peer id.
    public static func inventories(
        of peers: [KnownPeer],
        timeout: Duration = .seconds(3),
        enough: (([(KnownPeer, [InventoryEntry])]) -> Bool)? = nil,
        grace: Duration = .milliseconds(100),
        maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength,
        networkKey: NetworkKey? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) async -> [(KnownPeer, [InventoryEntry])] {
        /// One child's outcome: a peer's answer (nil if none), or the grace is over.
        enum Outcome: Sendable {
            case answer((KnownPeer, [InventoryEntry])?)
            case graceOver
        }
        // An inventory's size is the answering peer's choice: one larger than
        // `maximumInventoryBytes` is refused by the frame decoder before it is buffered, at
        // most `maximumConcurrentInventories` are in flight, and answers past
        // `maximumRetainedInventoryBytes` in all are dropped, so a swarm of liars costs a
        // bounded amount of memory however many ids it announces.
        let inventoryPayloadLimit = min(maximumPayloadLength, Self.maximumInventoryBytes)
        return await withTaskGroup(of: Outcome.self) { tasks in
            var pending = peers[...]
            func askNext() {
                guard let peer = pending.popFirst() else { return }
                tasks.addTask {
                    do {
                        let entries = try await withTimeout(timeout, "the inventory of \(peer.id.short)") {
                            try await PeerSession.connect(
                                to: peer.transferAddress,
                                maximumPayloadLength: inventoryPayloadLimit,
                                connectTimeout: timeout.timeAmount,
                                answerTimeout: timeout,
                                networkKey: networkKey,
                                group: group
                            ) { session in try await session.inventory() }
                        }
                        return .answer((peer, entries))
                    } catch {
                        if !Task.isCancelled {
                            logger.debug(
                                "no inventory from peer",
                                metadata: ["remote.peer.id": "\(peer.id.short)", "error": "\(error)"]
                            )
                        }
                        return .answer(nil)
                    }
                }
            }
            for _ in 0..<Self.maximumConcurrentInventories { askNext() }
            var results: [(KnownPeer, [InventoryEntry])] = []
            var failed = 0
            var dropped = 0
            var retainedBytes = 0
            var graceStarted = false
            while results.count + failed < peers.count, let outcome = await tasks.next() {
                guard case .answer(let answer) = outcome else { break }
                askNext()
                guard let answer else {
                    failed += 1
                    continue
                }
                let cost = answer.1.reduce(0) { $0 + Self.retainedCost(of: $1) }
                guard retainedBytes + cost <= Self.maximumRetainedInventoryBytes else {
                    failed += 1
                    dropped += 1
                    continue
                }
                retainedBytes += cost
                results.append(answer)
                if !graceStarted, results.count + failed < peers.count, let enough, enough(results) {
                    graceStarted = true
                    tasks.addTask {
                        try? await Task.sleep(for: grace)
                        return .graceOver
                    }
                }
            }
            // The grace is over (or everyone answered): close what is still open.
            tasks.cancelAll()
            if dropped > 0 {
                logger.warning(
                    "ignored inventories past the memory budget",
                    metadata: ["peers": "\(dropped)", "budget": "\(Self.maximumRetainedInventoryBytes)"]
                )
            }
            if results.count + failed < peers.count {
                let answered = Set(results.map(\.0.id))
                logger.debug(
                    "gave up on peers' inventories after the grace",
                    metadata: [
                        "peers": "\(peers.filter { !answered.contains($0.id) }.map(\.id.short))",
                        "grace": "\(grace)",
                    ]
                )
            }
            return results.sorted { $0.0.id < $1.0.id }
        }
    }

    /// The largest inventory accepted from one peer, in bytes: about 25,000 files with
    /// 100-byte names, or the chunk map of a 4 TiB file.
    static let maximumInventoryBytes = 4 << 20
    /// How many peers are asked for their inventories at once.
    static let maximumConcurrentInventories = 32
    /// The most memory the inventories of one gathering may take in all.
    static let maximumRetainedInventoryBytes = 32 << 20

    /// About how many bytes an inventory entry takes in memory.
    static func retainedCost(of entry: InventoryEntry) -> Int {
        entry.name.value.utf8.count + entry.bitmap.bytes.count + 128
    }

    /// The files in the swarm and here, with who holds which chunks.
    /// - Parameters:
    ///   - inventories: the peers' inventories, from `inventories(of:)`.
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

    /// The files a name (or id prefix) may mean: same name, id starting with the prefix.
    static func matching(name: String?, idPrefix: String?, in files: [SwarmFile]) -> [SwarmFile] {
        var matches = files
        if let name { matches = matches.filter { $0.name.value == name } }
        if let idPrefix {
            let prefix = idPrefix.lowercased()
            matches = matches.filter { $0.id.description.hasPrefix(prefix) }
        }
        return matches
    }

    /// Picks the file a name (or id prefix) means.
    ///
    /// Different files that share a name are never chosen between by how many peers hold
    /// each: peer ids cost nothing to make up, so a count of them is a vote any one host
    /// can win. The user picks with `--id`.
    /// - Parameters:
    ///   - name: the file name, or `nil` to go by id alone.
    ///   - idPrefix: hex digits the id must start with, if given.
    ///   - files: the swarm's files.
    /// - Returns: the one file that matches.
    /// - Throws: `P2PError` (`notFound` or `ambiguous`) saying what matched.
    public static func resolve(name: String?, idPrefix: String?, in files: [SwarmFile]) throws -> SwarmFile {
        let matches = Self.matching(name: name, idPrefix: idPrefix, in: files)
        let what = [name.map { "'\($0)'" }, idPrefix.map { "id \($0)…" }].compactMap { $0 }.joined(separator: " with ")
        guard let only = matches.first else {
            throw P2PError(code: .notFound, "no peer offers \(what)")
        }
        guard matches.count == 1 else {
            let choices = matches.map { file in
                "\(file.id.short) (\(file.size) bytes, \(file.holders.count) \(file.holders.count == 1 ? "peer" : "peers"))"
            }
            throw P2PError(
                code: .ambiguous,
                "\(what) names \(matches.count) different files: \(choices.joined(separator: ", ")); pick one with --id"
            )
        }
        return only
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
        progress: @escaping @Sendable (DownloadProgress) -> Void = { _ in }
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
        if !replaceExisting, let conflict = await self.store.conflict(for: manifest) {
            throw P2PError(
                code: .fileExists,
                "\(conflict), not the swarm's \(manifest.name) (id \(manifest.id.short)): "
                    + "move it away, or replace it with --replace"
            )
        }
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
        var arrivals: [DownloadRun.Arrival: Int] = [:]
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
            for (peer, bitmap) in file.holders { run.update(peer, holding: bitmap) }
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
                path = try await self.store.finishDownload(manifest.id, replacingExisting: replaceExisting)
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

    /// Finds the file a name (or id prefix) means in the swarm, asking again as peers join,
    /// for about five seconds in all (or until the deadline). Only what peers offer counts:
    /// a file of the same name here may be an older or unrelated one, and is never taken
    /// for the swarm's.
    private func lookUp(name: String?, idPrefix: String?, deadline: ContinuousClock.Instant?) async throws -> SwarmFile
    {
        let peerJoined = Wakeup()
        let joins = self.table.events()
        let eventLoop = self.group.next()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await Self.signal(peerJoined, onEachJoinIn: joins) }
            defer { group.cancelAll() }
            var lastError: (any Error)? = nil
            for attempt in 0..<41 {
                // The lookup need not wait for the slowest peer once the answers received
                // name exactly one file: the rest get `lookupGrace` more, then are given up.
                // A peer slower than that is not counted among the holders, so in a swarm
                // where two files share a name it can change which one most peers seem to
                // hold; once two files of the name have shown up, every peer is waited for.
                let answers = await Self.inventories(
                    of: self.table.servingPeers(),
                    timeout: self.configuration.inventoryTimeout,
                    enough: { answers in
                        let files = Self.swarmFiles(answers)
                        return Self.matching(name: name, idPrefix: idPrefix, in: files).count == 1
                    },
                    grace: self.configuration.lookupGrace,
                    maximumPayloadLength: self.maximumPayloadLength,
                    networkKey: self.networkKey,
                    group: self.group,
                    logger: self.logger
                )
                let files = Self.swarmFiles(answers)
                do {
                    return try Self.resolve(name: name, idPrefix: idPrefix, in: files)
                } catch let error as P2PError where error.code == .notFound {
                    lastError = error
                }
                // A peer that just started hears the swarm's answers within milliseconds: ask
                // again as soon as a peer joins, or soon, then less often.
                let now = ContinuousClock.now
                guard attempt < 40, deadline.map({ now < $0 }) ?? true else { break }
                await peerJoined.wait(atMost: .milliseconds(attempt < 20 ? 50 : 200), on: eventLoop)
                // Peers answer our start announcement within milliseconds of each other: let
                // the rest in (until 10 ms pass without another, 50 ms at most), so that the
                // first look at the swarm sees them all and work is spread from the start.
                let settled = ContinuousClock.now + .milliseconds(50)
                var known = self.table.servingPeers().count
                while ContinuousClock.now < settled {
                    await peerJoined.wait(atMost: .milliseconds(10), on: eventLoop)
                    let now = self.table.servingPeers().count
                    if now == known { break }
                    known = now
                }
                try Task.checkCancellation()
            }
            throw lastError ?? P2PError(code: .notFound, "file not found")
        }
    }

    /// Signals `wakeup` whenever a peer joins, until cancelled. The caller makes `joins`
    /// (`PeerTable.events()`) before it first looks at the table, so that no join falls
    /// between that look and this watch.
    private static func signal(_ wakeup: Wakeup, onEachJoinIn joins: AsyncStream<PeerEvent>) async {
        for await event in joins { if case .joined = event { wakeup.signal() } }
    }

    /// Gets the file's manifest from a peer that holds it, checking that it hashes to the
    /// file id. A peer whose manifest does not is not asked again; peers that appear while
    /// this runs are asked too, for up to `manifestPatience` (or until the deadline).
    private func fetchManifest(_ file: SwarmFile, deadline: ContinuousClock.Instant?) async throws -> Manifest {
        if let known = await self.store.manifest(for: file.id) { return known }
        var asked = Set<PeerID>()
        let giveUp = min(deadline ?? .now + Self.manifestPatience, .now + Self.manifestPatience)
        repeat {
            let sources = Self.manifestSources(self.table.servingPeers(), holders: file.holders)
            for peer in sources where !asked.contains(peer.id) {
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

    /// How many times a download reads its file back whole before it gives up on a disk
    /// that changes what was written.
    static let verificationPasses = 2

    /// How long to look for a peer with a valid manifest.
    static let manifestPatience: Duration = .seconds(10)

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
                for peer in self.table.servingPeers() where run.claimWorker(peer.id) {
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

    /// One peer's worker: on one connection, asks the peer to relay the file's chunks it
    /// is handed, keeps its inventory fresh, and keeps a window of requests in flight (for
    /// work, if it is the seeder a crowd shares; for chunks, otherwise), while a receiver
    /// verifies and writes whatever comes back, answers and relayed chunks alike.
    private func work(with peer: KnownPeer, on run: DownloadRun) async {
        let id = peer.id
        let link = PeerLink()
        run.register(link.wakeup)
        defer {
            run.unregister(link.wakeup)
            run.cancelAll(link.chunksInFlight, from: id)
        }
        do {
            try await PeerSession.connect(
                to: peer.transferAddress,
                maximumPayloadLength: self.maximumPayloadLength,
                answerTimeout: self.configuration.answerTimeout,
                networkKey: self.networkKey,
                group: self.group
            ) { session in
                run.markTried(peer)
                let sender = session.sender
                // A stalled answer closes the connection; the receiver's wait then fails.
                let timeout = self.configuration.answerTimeout
                let watchdog = sender.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) {
                    _ in
                    if link.isStalled(after: timeout) { sender.close() }
                }
                defer { watchdog.cancel() }
                link.expect(.inventory)
                try await sender.send([.relayRequest(run.manifest.id), .inventoryRequest])
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await self.sendRequests(to: id, link: link, sender: sender, run: run) }
                    try await self.receive(from: id, session: &session, link: link, run: run)
                    tasks.cancelAll()
                }
            }
        } catch {
            if !run.isFinished && !Task.isCancelled {
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
    private func sendRequests(to id: PeerID, link: PeerLink, sender: PeerSession.Sender, run: DownloadRun) async throws
    {
        let file = run.manifest.id
        let chunkSize = run.manifest.chunkSize
        var lastRefresh = ContinuousClock.now
        var sentHeld = false
        while !run.isFinished && !Task.isCancelled {
            var requests: [TransferMessage] = []
            let now = ContinuousClock.now
            // The peer's holdings change while it downloads too; a seeder's do not.
            if !run.holdsAll(id) && now - lastRefresh >= self.configuration.refreshInterval
                && !link.isExpecting(.inventory)
            {
                link.expect(.inventory)
                requests.append(.inventoryRequest)
                lastRefresh = now
            }
            let window = link.window(
                chunkSize: chunkSize,
                initial: self.configuration.initialWindow,
                configuration: self.configuration
            )
            if run.isWorkSource(id) {
                // With nobody to forward to, work is just chunks, as fast as they come.
                // Otherwise ask only while this peer keeps up forwarding what it was handed
                // (SPEC §7): each chunk asked for is one more chunk in every subscriber's
                // queue, so the longest queue plus what is in flight stays within one chunk
                // of the limit.
                let relaying = self.relayHub.subscriberCount(of: file) > 0
                let limit = self.configuration.forwardingBacklogLimit
                while link.requestsInFlight < (relaying ? 2 : window) {
                    if relaying
                        && self.relayHub.signalWhenBacklog(
                            of: file,
                            isBelow: limit + chunkSize * (1 - link.requestsInFlight),
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
                            pieceLength: relaying ? self.configuration.relayPieceLength : 0
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
        session: inout PeerSession,
        link: PeerLink,
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
            // The one notice of chunks the peer will not forward, sent as it takes this
            // connection's relay request; a second is a peer trying to steer the scheduler.
            var toldUnrelayed = false
            func write(
                _ bytes: ByteBuffer,
                chunk: Int,
                as arrival: DownloadRun.Arrival,
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
                    guard !toldUnrelayed else {
                        throw P2PError(code: .protocolViolation, "a second notice of unrelayed chunks")
                    }
                    toldUnrelayed = true
                    guard let chunks = ChunkBitmap(bytes: bytes, count: run.manifest.chunkCount) else {
                        throw P2PError(code: .protocolViolation, "unrelayed chunks that do not fit the file")
                    }
                    run.unrelayed(chunks, by: id)
                case .inventory(let entries):
                    try link.answered(.inventory, bytes: 0)
                    let entry = entries.first { $0.id == file }
                    run.update(id, holding: entry?.bitmap ?? ChunkBitmap(count: run.manifest.chunkCount))
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
}

extension Downloader {
    /// Verifies a chunk against the manifest, forwards it if it was handed out by a seeder,
    /// and writes it. A chunk handed out in pieces has had all but its `lastPiece`
    /// forwarded already: that one goes once the chunk verifies, and if it does not, the
    /// subscribers are told to drop the rest.
    /// - Throws: `P2PError` (`corrupt`) once a peer has sent `maximumBadChunks` bad chunks,
    ///   which drops it; a disk error ends the whole download (`run.abort`).
    fileprivate func accept(
        _ bytes: ByteBuffer,
        chunk: Int,
        from id: PeerID,
        run: DownloadRun,
        as arrival: DownloadRun.Arrival,
        lastPiece: (offset: Int, bytes: ByteBuffer)? = nil
    ) async throws {
        guard run.manifest.verify(bytes, chunk: chunk) else {
            if arrival == .assigned && lastPiece != nil { self.relayHub.abort(chunk, of: run.manifest.id) }
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
    }
}

/// One worker's connection state, shared by its sending and receiving halves: what is
/// expected back, in order, and how fast answers come (which sizes the window).
final class PeerLink: Sendable {
    /// What an answer on the connection is to.
    enum Expectation: Equatable {
        case inventory
        case chunk(Int)
        case work
    }

    private struct State {
        var expected = Deque<Expectation>()
        var lastProgress = ContinuousClock.now
        var timedOut = false
        // Delivery rate, over periods of at least `ratePeriod`.
        var periodStart = ContinuousClock.now
        var periodBytes = 0
        var bytesPerSecond = 0.0
    }

    private let state = Mutex(State())
    /// Wakes the sending half.
    let wakeup = Wakeup()
    private static let ratePeriod: Duration = .milliseconds(100)

    /// Records a request about to be sent.
    func expect(_ expectation: Expectation) {
        self.state.withLock { state in
            if state.expected.isEmpty { state.lastProgress = .now }
            state.expected.append(expectation)
        }
    }

    func isExpecting(_ expectation: Expectation) -> Bool {
        self.state.withLock { $0.expected.contains(expectation) }
    }

    /// Whether the next answer must be to `expectation` (answers come in order).
    func isAnswering(_ expectation: Expectation) -> Bool {
        self.state.withLock { $0.expected.first == expectation }
    }

    /// Requests for chunks or work that are unanswered (inventory requests do not count).
    var requestsInFlight: Int {
        self.state.withLock { state in state.expected.count { $0 != .inventory } }
    }

    /// The chunks asked for and not yet answered.
    var chunksInFlight: [Int] {
        self.state.withLock { state in
            state.expected.compactMap { if case .chunk(let chunk) = $0 { chunk } else { nil } }
        }
    }

    /// Something arrived.
    func madeProgress() {
        self.state.withLock { $0.lastProgress = .now }
    }

    /// Whether an answer has been awaited for longer than `timeout`; marks the link timed out.
    func isStalled(after timeout: Duration) -> Bool {
        self.state.withLock { state in
            guard !state.expected.isEmpty, ContinuousClock.now - state.lastProgress > timeout else { return false }
            state.timedOut = true
            return true
        }
    }

    var timedOut: Bool { self.state.withLock { $0.timedOut } }

    /// An answer arrived: it must be to the oldest request.
    /// - Throws: `P2PError` (`protocolViolation`) if it answers something else.
    func answered(_ expectation: Expectation, bytes: Int) throws(P2PError) {
        try self.state.withLock { (state) throws(P2PError) in
            guard state.expected.first == expectation else {
                throw P2PError(code: .protocolViolation, "answered \(expectation) out of order")
            }
            state.expected.removeFirst()
            state.periodBytes += bytes
            let now = ContinuousClock.now
            let elapsed = now - state.periodStart
            if elapsed >= Self.ratePeriod {
                let instant = Double(state.periodBytes) / elapsed.seconds
                state.bytesPerSecond = state.bytesPerSecond == 0 ? instant : 0.5 * state.bytesPerSecond + 0.5 * instant
                state.periodBytes = 0
                state.periodStart = now
            }
        }
    }

    /// A failure arrived: it answers the oldest request, which is returned.
    /// - Throws: `P2PError` (`protocolViolation`) if no request, or a chunk request for
    ///   another chunk, is waiting.
    func answeredWithFailure(chunk: Int) throws(P2PError) -> Expectation {
        try self.state.withLock { (state) throws(P2PError) -> Expectation in
            guard let first = state.expected.first else {
                throw P2PError(code: .protocolViolation, "a failure answering nothing")
            }
            if case .chunk(let expected) = first, expected != chunk {
                throw P2PError(code: .protocolViolation, "a failure for chunk \(chunk) answering chunk \(expected)")
            }
            state.expected.removeFirst()
            return first
        }
    }

    /// Requests to keep in flight: enough to cover what the peer delivers in
    /// `windowLatency`, and two more, so the link never runs dry; `initial` until the
    /// rate is known. Large windows only add latency: on a shared uplink, every request
    /// queued at the sender is time the others wait.
    func window(chunkSize: Int, initial: Int, configuration: Downloader.Configuration) -> Int {
        let rate = self.state.withLock { $0.bytesPerSecond }
        guard rate > 0 else { return initial }
        let covering = Int(rate * configuration.windowLatency.seconds / Double(chunkSize)) + 2
        return min(max(covering, 2), configuration.maximumWindow)
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
        var arrivals: [Arrival: Int] = [:]
        /// An error that ends the whole download, such as a full disk.
        var failure: (any Error)? = nil
        /// When a peer whose worker ended may get a new one.
        var retryAfter: [PeerID: ContinuousClock.Instant] = [:]
        /// The pause before the next retry of each peer.
        var backoff: [PeerID: Duration] = [:]
        /// The workers' wake-ups, signalled when the download changes in a way that may
        /// give them something to ask for.
        var workerWakeups: [ObjectIdentifier: Wakeup] = [:]
    }

    private let state: Mutex<State>
    private let started = ContinuousClock.now
    /// Wakes the loop that starts workers: a worker ended, or the download finished.
    let mainWakeup = Wakeup()

    init(manifest: Manifest, file: ChunkFile, have: ChunkBitmap, relayGrace: Duration = .milliseconds(1500)) {
        self.manifest = manifest
        self.file = file
        let held = have.indices.reduce(Int64(0)) { $0 + Int64(manifest.length(ofChunk: $1)) }
        var scheduler = ChunkScheduler(have: have)
        scheduler.relaying = true
        scheduler.relayGrace = relayGrace.seconds
        self.state = Mutex(State(scheduler: scheduler, bytesHeld: held))
    }

    /// Seconds since the download began: the scheduler's clock.
    private var now: Double { (ContinuousClock.now - self.started).seconds }

    func register(_ wakeup: Wakeup) {
        self.state.withLock { $0.workerWakeups[ObjectIdentifier(wakeup)] = wakeup }
    }

    func unregister(_ wakeup: Wakeup) {
        self.state.withLock { $0.workerWakeups[ObjectIdentifier(wakeup)] = nil }
    }

    /// Wakes every worker and the main loop.
    private func wakeEveryone() {
        let wakeups = self.state.withLock { Array($0.workerWakeups.values) }
        for wakeup in wakeups { wakeup.signal() }
        self.mainWakeup.signal()
    }

    /// Whether `peer` is the seeder to ask for work rather than chunks.
    func isWorkSource(_ peer: PeerID) -> Bool { self.state.withLock { $0.scheduler.workSource == peer } }

    /// Whether `peer` holds the whole file.
    func holdsAll(_ peer: PeerID) -> Bool { self.state.withLock { $0.scheduler.holdsAll(peer) } }

    /// The held chunks' bitmap bytes for a work request; empty if none are held.
    var heldBitmapBytes: [UInt8] {
        self.state.withLock { $0.scheduler.have.setCount == 0 ? [] : $0.scheduler.have.bytes }
    }

    /// The seeder has no more work: chunks still missing are asked of holders.
    /// - Returns: the chunks still missing, the first time; `nil` after.
    @discardableResult
    func workExhausted() -> Int? {
        let now = self.now
        let missing = self.state.withLock { state -> Int? in
            guard state.scheduler.workSource != nil else { return nil }
            state.scheduler.workExhausted(now: now)
            return state.scheduler.chunkCount - state.scheduler.have.setCount
        }
        self.wakeEveryone()
        return missing
    }

    var isComplete: Bool { self.state.withLock { $0.scheduler.isComplete } }
    var isFinished: Bool {
        self.state.withLock { $0.scheduler.isComplete || $0.timedOut || $0.failure != nil }
    }
    var failure: (any Error)? { self.state.withLock { $0.failure } }

    func abort(_ error: any Error) {
        self.state.withLock { if $0.failure == nil { $0.failure = error } }
        self.wakeEveryone()
    }

    func unclaim(_ chunk: Int, from peer: PeerID) {
        self.state.withLock { state in
            state.writing.remove(chunk)
            state.scheduler.cancel(chunk, from: peer)
        }
    }
    var bytesHeld: Int64 { self.state.withLock { $0.bytesHeld } }
    var bytesFromPeer: [PeerID: Int64] { self.state.withLock { $0.bytesFromPeer } }
    var activePeers: Int { self.state.withLock { $0.bytesFromPeer.values.count { $0 > 0 } } }
    var workerCount: Int { self.state.withLock { $0.workers.count } }

    func timeOut() {
        self.state.withLock { $0.timedOut = true }
        self.wakeEveryone()
    }

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
        self.mainWakeup.signal()
    }

    func markTried(_ peer: KnownPeer) {
        self.state.withLock { $0.tried[peer.id] = peer.transferAddressDescription }
    }

    func update(_ peer: PeerID, holding: ChunkBitmap) {
        let now = self.now
        self.state.withLock { $0.scheduler.update(peer, holding: holding, now: now) }
        self.wakeEveryone()
    }

    func unrelayed(_ chunks: ChunkBitmap, by peer: PeerID) {
        let now = self.now
        self.state.withLock { $0.scheduler.unrelayed(chunks, by: peer, now: now) }
        self.wakeEveryone()
    }

    func next(for peer: PeerID) -> Int? {
        let now = self.now
        return self.state.withLock { $0.scheduler.next(for: peer, now: now) }
    }

    func cancel(_ chunk: Int, from peer: PeerID) {
        self.state.withLock { $0.scheduler.cancel(chunk, from: peer) }
        self.wakeEveryone()
    }

    func cancelAll(_ chunks: [Int], from peer: PeerID) {
        guard !chunks.isEmpty else { return }
        self.state.withLock { state in
            for chunk in chunks { state.scheduler.cancel(chunk, from: peer) }
        }
        self.wakeEveryone()
    }

    func lacks(_ chunk: Int, peer: PeerID) {
        self.state.withLock { $0.scheduler.lacks(chunk, peer: peer) }
        self.wakeEveryone()
    }

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

    /// How a chunk came.
    enum Arrival: String, Sendable {
        /// Asked for by number.
        case pulled
        /// Forwarded by another downloader.
        case relayed
        /// Handed out by a seeder, to forward.
        case assigned
    }

    /// New chunks by how they came, for the log.
    var arrivals: [Arrival: Int] { self.state.withLock { $0.arrivals } }

    func completed(_ chunk: Int, bytes: Int, from peer: PeerID, as arrival: Arrival) {
        let complete = self.state.withLock { state in
            state.writing.remove(chunk)
            if state.scheduler.completed(chunk, from: peer) {
                state.bytesHeld += Int64(bytes)
                state.arrivals[arrival, default: 0] += 1
            }
            state.bytesFromPeer[peer, default: 0] += Int64(bytes)
            return state.scheduler.isComplete
        }
        if complete { self.wakeEveryone() }
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
        self.wakeEveryone()
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
                    + "(\(ChunkBitmap.ranges(missing))); \(triedText); "
                    + "kept \(self.file.dataPath), the next download resumes from it"
            )
        }
    }
}
