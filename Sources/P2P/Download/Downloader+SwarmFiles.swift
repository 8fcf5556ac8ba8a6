import Logging
import NIOCore
import NIOPosix

extension Downloader {
    // MARK: Looking up a file

    /// Finds the file a name (or id prefix) means in the swarm, asking again as peers join
    /// and as `LookupPatience` allows: until the deadline, or for a few seconds without one.
    /// Only what peers offer counts: a file of the same name here may be an older or
    /// unrelated one, and is never taken for the swarm's.
    func lookUp(name: String?, idPrefix: String?, deadline: ContinuousClock.Instant?) async throws -> SwarmFile {
        let peerJoined = Wakeup()
        let joins = self.table.events()
        let eventLoop = self.group.next()
        var patience = LookupPatience(started: .now, deadline: deadline)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await Self.signal(peerJoined, onEachJoinIn: joins) }
            defer { group.cancelAll() }
            // Bounded by `patience`, which gives up at the deadline.
            while true {
                // The lookup need not wait for the slowest peer once the answers received
                // name exactly one file and a peer that holds all of it: the rest get
                // `lookupGrace` more, then are given up. A peer slower than that is not
                // counted among the holders, so in a swarm where two files share a name it
                // can change which one most peers seem to hold; once two files of the name
                // have shown up, every peer is waited for. In a crowd the first answers
                // come from other downloaders, whose partial files name it too; the seeder,
                // busy answering them all, is waited for: the download's relay overlay
                // counts everyone but the peers known to hold the whole file.
                let answers = await Self.inventories(
                    of: self.table.servingPeers(),
                    timeout: self.configuration.inventoryTimeout,
                    enough: { Self.settlesLookup($0, name: name, idPrefix: idPrefix) },
                    grace: self.configuration.lookupGrace,
                    settings: self.settings,
                    holdingIn: self.table
                )
                let notFound: P2PError
                do {
                    return try Self.resolve(name: name, idPrefix: idPrefix, in: Self.swarmFiles(answers))
                } catch let error as P2PError where error.code == .notFound {
                    notFound = error
                }
                guard let wait = patience.failed(now: .now) else { throw notFound }
                // Ask again as soon as a peer joins, or after the wait.
                await peerJoined.wait(atMost: wait.timeAmount, on: eventLoop)
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
        }
    }

    /// Gets the file's manifest from a peer that holds it, checking that it hashes to the
    /// file id. A peer whose manifest is invalid is not asked again; one that did not
    /// answer, or did not have it yet, is asked again after a wait, as are peers that
    /// appear meanwhile, until the deadline (or `manifestPatience` without one): a seeder
    /// busy serving a crowd answers late, not never.
    func fetchManifest(_ file: SwarmFile, deadline: ContinuousClock.Instant?) async throws -> Manifest {
        if let known = await self.store.manifest(for: file.id) { return known }
        var refused = Set<PeerID>()
        var patience = LookupPatience(started: .now, deadline: deadline, patience: Self.manifestPatience)
        // Bounded by `patience`, which gives up at the deadline.
        while true {
            let sources = Self.manifestSources(self.table.servingPeers(), holders: file.holders)
            for peer in sources where !refused.contains(peer.id) {
                do {
                    let manifest = try await TransferClient.connect(
                        to: peer.transferAddress,
                        settings: self.settings,
                        answerTimeout: self.configuration.answerTimeout
                    ) { session in try await session.manifest(for: file.id) }
                    if let manifest {
                        await self.store.remember(manifest)
                        return manifest
                    }
                } catch {
                    if Self.isInvalidManifest(error) { refused.insert(peer.id) }
                    self.logger.warning(
                        "no valid manifest from peer",
                        metadata: ["remote.peer.id": "\(peer.id.short)", "error": "\(error)"]
                    )
                }
                try Task.checkCancellation()
            }
            guard let wait = patience.failed(now: .now) else {
                throw P2PError(code: .notFound, "no peer gave a valid manifest for \(file.name) (\(file.id.short))")
            }
            try await Task.sleep(for: max(wait, .milliseconds(250)))
        }
    }

    /// Whether the inventories received settle a lookup, so that the peers still to
    /// answer need not be waited for: they name exactly one file of the name (or id
    /// prefix), and some peer holds all of it.
    static func settlesLookup(_ answers: [(KnownPeer, [InventoryEntry])], name: String?, idPrefix: String?) -> Bool {
        let files = Self.matching(name: name, idPrefix: idPrefix, in: Self.swarmFiles(answers))
        return files.count == 1 && files[0].holders.values.contains { $0.isComplete }
    }

    /// How long to look for a peer with a valid manifest when the download has no deadline.
    static let manifestPatience: Duration = .seconds(10)

    /// Whether a manifest request failed because the peer's answer was wrong (it does not
    /// hash to the file id, or is not a manifest), rather than because the peer was slow or
    /// gone: such a peer is not asked again.
    static func isInvalidManifest(_ error: any Error) -> Bool {
        guard let error = error as? P2PError else { return false }
        return error.code == .protocolViolation || error.code == .corrupt
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
    ///   - settings: how to connect, and where to log peers that do not answer, and peers
    ///     given up.
    ///   - table: where each peer is held (`PeerTable.hold`) while its connection is open,
    ///     so that a peer too busy to announce on time is not expired while it answers.
    /// - Returns: the inventory of each peer that answered in time, by peer id.
    public static func inventories(
        of peers: [KnownPeer],
        timeout: Duration = .seconds(3),
        enough: (([(KnownPeer, [InventoryEntry])]) -> Bool)? = nil,
        grace: Duration = .milliseconds(100),
        settings: TransferSettings,
        holdingIn table: PeerTable? = nil
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
        let inventorySettings = settings.limitingPayload(to: Self.maximumInventoryBytes)
        let logger = settings.logger
        return await withTaskGroup(of: Outcome.self) { tasks in
            var pending = peers[...]
            func askNext() {
                guard let peer = pending.popFirst() else { return }
                tasks.addTask {
                    do {
                        let entries = try await withTimeout(timeout, "the inventory of \(peer.id.short)") {
                            try await TransferClient.connect(
                                to: peer.transferAddress,
                                settings: inventorySettings,
                                connectTimeout: timeout.timeAmount,
                                answerTimeout: timeout
                            ) { session in
                                // A peer that took the connection is alive while it
                                // answers, whatever becomes of its announcements.
                                table?.hold(peer.id)
                                defer { table?.release(peer.id) }
                                return try await session.inventory()
                            }
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
}
