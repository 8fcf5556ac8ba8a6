import Logging
import NIOCore
import NIOPosix
import _NIOFileSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a finished collection download did.
public struct CollectionDownloadResult: Sendable {
    /// The collection's manifest.
    public var manifest: CollectionManifest
    /// Where the folder is now.
    public var path: FilePath
    /// Seconds from start to the verified tree in place.
    public var seconds: Double
    /// Files fetched (or copied from a file held here) by this run.
    public var filesFetched: Int
    /// Files that were already in the tree from an earlier run.
    public var filesAlreadyHeld: Int
    /// Bytes received from each peer in this run.
    public var bytesFromPeer: [PeerID: Int64]
}

extension Downloader {
    /// The most files of one collection fetched at a time: each costs a connection per
    /// peer and its buffers, so a folder of thousands of small files costs what eight
    /// downloads do.
    public static let collectionFilesAtOnce = 8

    /// The folder inside the downloads folder's partials folder where a collection is put
    /// together before it is moved into place.
    static func collectionTree(of id: FileID, downloads: FilePath) -> FilePath {
        downloads.appending(ChunkStore.partialFolderName).appending("\(id).collection")
    }

    // MARK: Looking up a file or a folder

    /// Fetches the collection (shared folder) with this name or id into the downloads
    /// folder, resumably: the library's entry point for "this folder, here" (`get FOLDER`
    /// resolves files and folders together, then calls `downloadCollection`; a delivery
    /// receiver that is told a folder calls this).
    /// - Parameters:
    ///   - name: the folder's name, or `nil` to go by id alone.
    ///   - idPrefix: hex digits the collection id starts with (all 64 for exactly one).
    ///   - timeout: give up after this long, keeping what was fetched for the next call.
    ///   - progress: called as files are placed.
    /// - Returns: what was fetched, and where the folder is.
    /// - Throws: `P2PError` as `lookUpItem` and `downloadCollection` do.
    public func fetchCollection(
        name: String?,
        idPrefix: String?,
        timeout: Duration? = nil,
        progress: @escaping @Sendable (DownloadProgress) -> Void = { _ in }
    ) async throws -> CollectionDownloadResult {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let item = try await self.lookUpItem(name: name, idPrefix: idPrefix, deadline: deadline, foldersOnly: true)
        guard case .collection(let collection) = item else {
            throw P2PError(code: .notFound, "no peer offers a folder \(name.map { "'\($0)'" } ?? idPrefix ?? "")")
        }
        return try await self.downloadCollection(
            collection,
            timeout: deadline.map { $0 - ContinuousClock.now },
            progress: progress
        )
    }

    /// Finds what a name (or id prefix) means in the swarm, a file or a collection, asking
    /// again as peers join and as `LookupPatience` allows.
    /// - Parameters:
    ///   - name: the name, or `nil` to go by id alone.
    ///   - idPrefix: hex digits the id starts with.
    ///   - deadline: look until then; for a few seconds without one.
    ///   - foldersOnly: whether only collections count (no inventories are asked for).
    /// - Returns: the one file or collection meant.
    /// - Throws: `P2PError` (`notFound`, `ambiguous`).
    public func lookUpItem(
        name: String?,
        idPrefix: String?,
        deadline: ContinuousClock.Instant?,
        foldersOnly: Bool = false
    ) async throws -> SwarmItem {
        let eventLoop = self.group.next()
        var patience = LookupPatience(started: .now, deadline: deadline)
        let peerJoined = Wakeup()
        let joins = self.table.events()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await Self.signal(peerJoined, onEachJoinIn: joins) }
            defer { group.cancelAll() }
            // Bounded by `patience`, which gives up at the deadline.
            while true {
                let (files, lists) =
                    foldersOnly
                    ? ([], await Self.collectionLists(of: self.table.servingPeers(), settings: self.settings))
                    : await self.filesAndCollections(name: name, idPrefix: idPrefix)
                let collections = SwarmCollection.gather(lists.map { ($0.0.id, $0.1) })
                let notFound: P2PError
                do {
                    return try SwarmItem.resolve(name: name, idPrefix: idPrefix, files: files, collections: collections)
                } catch let error as P2PError where error.code == .notFound {
                    notFound = error
                }
                guard let wait = patience.failed(now: .now) else { throw notFound }
                await peerJoined.wait(atMost: wait.timeAmount, on: eventLoop)
                try Task.checkCancellation()
            }
        }
    }

    /// The swarm's files and collection lists, asked of every serving peer at once. The
    /// inventories end as a file lookup's do (`inventories` with `enough`: once the
    /// answers name exactly one file, the rest get `lookupGrace`); the collection lists get
    /// `lookupGrace` more than the inventories took, so a peer that never answers costs a
    /// `get` of a file no more than it did before folders were listed.
    private func filesAndCollections(
        name: String?,
        idPrefix: String?
    ) async -> (files: [SwarmFile], lists: [(KnownPeer, [CollectionEntry])]) {
        enum Gathered: Sendable {
            case files([SwarmFile])
            case lists([(KnownPeer, [CollectionEntry])])
            case graceOver
        }
        let peers = self.table.servingPeers()
        let grace = self.configuration.lookupGrace
        return await withTaskGroup(of: Gathered.self) { group in
            group.addTask {
                .lists(
                    await Self.collectionLists(
                        of: peers,
                        timeout: self.configuration.inventoryTimeout,
                        settings: self.settings
                    )
                )
            }
            group.addTask {
                let answers = await Self.inventories(
                    of: peers,
                    timeout: self.configuration.inventoryTimeout,
                    enough: { answers in
                        Self.matching(name: name, idPrefix: idPrefix, in: Self.swarmFiles(answers)).count == 1
                    },
                    grace: grace,
                    settings: self.settings
                )
                return .files(Self.swarmFiles(answers))
            }
            var files: [SwarmFile]? = nil
            var lists: [(KnownPeer, [CollectionEntry])]? = nil
            // Ends once both are in: the grace cancels the lists still out, which then
            // return what came.
            while files == nil || lists == nil, let next = await group.next() {
                switch next {
                case .files(let found):
                    files = found
                    if lists == nil {
                        group.addTask {
                            try? await Task.sleep(for: grace)
                            return .graceOver
                        }
                    }
                case .lists(let found):
                    lists = found
                case .graceOver:
                    group.cancelAll()
                }
            }
            group.cancelAll()
            return (files ?? [], lists ?? [])
        }
    }

    /// Asks peers for their collection lists, a bounded number at once.
    /// - Parameters:
    ///   - peers: whom to ask.
    ///   - timeout: how long to wait for each peer, connecting included.
    ///   - settings: how to connect.
    /// - Returns: each answering peer's list.
    public static func collectionLists(
        of peers: [KnownPeer],
        timeout: Duration = .seconds(3),
        settings: TransferSettings
    ) async -> [(KnownPeer, [CollectionEntry])] {
        // A list is as large as the answering peer makes it: the frame decoder refuses one
        // over `maximumInventoryBytes` before buffering it.
        let listSettings = settings.limitingPayload(to: Self.maximumInventoryBytes)
        return await withTaskGroup(of: (KnownPeer, [CollectionEntry])?.self) { tasks in
            var pending = peers[...]
            func askNext() {
                guard let peer = pending.popFirst() else { return }
                tasks.addTask {
                    try? await withTimeout(timeout, "the collections of \(peer.id.short)") {
                        try await TransferClient.connect(
                            to: peer.transferAddress,
                            settings: listSettings,
                            connectTimeout: timeout.timeAmount,
                            answerTimeout: timeout
                        ) { session in (peer, try await session.collections()) }
                    }
                }
            }
            for _ in 0..<Self.maximumConcurrentInventories { askNext() }
            var results: [(KnownPeer, [CollectionEntry])] = []
            while let answer = await tasks.next() {
                askNext()
                if let answer { results.append(answer) }
            }
            return results.sorted { $0.0.id < $1.0.id }
        }
    }

    // MARK: Fetching a collection

    /// Fetches a collection (a shared folder) into the downloads folder, resumably: the
    /// library's one entry point for "this folder, here", for `get FOLDER` and for a
    /// delivery receiver.
    ///
    /// The collection manifest is fetched from a peer that lists the collection and
    /// checked (it hashes to the id; every path is safe, no path twice, none both a file
    /// and a folder) before anything is written: a hostile one is refused whole. Then the
    /// tree is put together in `.p2p-partials/ID.collection` in the downloads folder, each
    /// file an ordinary swarm download verified chunk by chunk and whole, a bounded number
    /// at once (`CollectionFetchPlan`), and moved to `NAME` only when every file is in it.
    /// A run that stops (killed, timed out) leaves the files it finished in that tree and
    /// the others' `.partial` files: the next run checks the finished ones, keeps them, and
    /// resumes the rest.
    /// - Parameters:
    ///   - collection: the collection, from `lookUpItem`.
    ///   - timeout: give up after this long, keeping what was fetched; `nil` for never.
    ///   - progress: called as files are placed.
    ///   - admit: called with the verified collection manifest before anything is written;
    ///     what it throws ends the download (a delivery checks the folder is the one offered).
    ///   - pack: the file id of the folder's pack (`CollectionPack`), when a sender offers
    ///     one: its small files are fetched as that one file, then cut apart; whatever the
    ///     pack did not bring is fetched file by file.
    /// - Returns: what was fetched, and where the folder is.
    /// - Throws: `P2PError`: `corrupt`, `protocolViolation` or `badName` when no peer gives
    ///   a valid collection manifest (saying what was wrong with it); `fileExists` when
    ///   something else is at `NAME`; `timedOut`, `notFound` or `storage` when a file of
    ///   it could not be fetched (what was fetched stays for the next run).
    public func downloadCollection(
        _ collection: SwarmCollection,
        timeout: Duration? = nil,
        progress: @escaping @Sendable (DownloadProgress) -> Void = { _ in },
        admit: @Sendable (CollectionManifest) throws -> Void = { _ in },
        pack: FileID? = nil
    ) async throws -> CollectionDownloadResult {
        let started = ContinuousClock.now
        let deadline = timeout.map { started + $0 }
        let manifest = try await self.fetchCollectionManifest(collection, deadline: deadline)
        guard manifest.name == collection.name else {
            throw P2PError(
                code: .corrupt,
                "the folder offered as '\(collection.name)' (id \(collection.id.short)) is named '\(manifest.name)' "
                    + "by its manifest; refused"
            )
        }
        try admit(manifest)
        let downloads = self.store.configuration.downloadsDirectory
        let target = downloads.appending(manifest.name.value)
        if await self.store.collectionPath(of: manifest.id) == target {
            return CollectionDownloadResult(
                manifest: manifest,
                path: target,
                seconds: 0,
                filesFetched: 0,
                filesAlreadyHeld: manifest.files.count,
                bytesFromPeer: [:]
            )
        }
        if (try? await FileSystem.shared.info(forFileAt: target, infoAboutSymbolicLink: true)) != nil {
            throw P2PError(
                code: .fileExists,
                "\(target) is already there, not the swarm's folder \(manifest.name) (id \(manifest.id.short)): "
                    + "move it away"
            )
        }
        let tree = Self.collectionTree(of: manifest.id, downloads: downloads)
        var placed = try await self.prepareTree(tree, for: manifest)
        var bytesFromPeer: [PeerID: Int64] = [:]
        var pathsFromPack = 0
        var cutFiles: [ChunkStore.CutFile] = []
        if let pack, let layout = CollectionPack(manifest), !layout.paths.isSubset(of: placed) {
            let packPaths = layout.paths
            let placedBytes = manifest.files.reduce(Int64(0)) {
                $0 + (placed.contains($1.path) && !packPaths.contains($1.path) ? Int64($1.size) : 0)
            }
            do {
                let fromPack = try await self.fetchPack(
                    pack,
                    layout,
                    of: collection,
                    into: tree,
                    skipping: placed,
                    deadline: deadline,
                    progress: { packProgress in
                        var folderProgress = packProgress
                        folderProgress.name = manifest.name.value
                        folderProgress.totalBytes = Int64(manifest.totalSize)
                        folderProgress.bytesHeld = min(packProgress.bytesHeld + placedBytes, folderProgress.totalBytes)
                        progress(folderProgress)
                    }
                )
                cutFiles = fromPack.files
                let cutPaths = Set(fromPack.files.map(\.path))
                pathsFromPack = cutPaths.subtracting(placed).count
                placed.formUnion(cutPaths)
                bytesFromPeer.merge(fromPack.bytesFromPeer, uniquingKeysWith: +)
            } catch let error as P2PError where error.code != .timedOut && !Task.isCancelled {
                // The files the pack would have brought are fetched one by one instead,
                // after whatever it did bring is found in the tree again.
                self.logger.warning(
                    "the folder's pack failed",
                    metadata: [
                        "collection.id": "\(manifest.id.short)", "file.id": "\(pack.short)", "error": "\(error)",
                    ]
                )
                let found = try await self.prepareTree(tree, for: manifest)
                pathsFromPack = found.subtracting(placed).count
                placed = found
            }
        }
        var plan = CollectionFetchPlan(
            manifest: manifest,
            placed: placed,
            maximumAtOnce: Self.collectionFilesAtOnce
        )
        self.logger.info(
            "folder download started",
            metadata: [
                "collection.id": "\(manifest.id.short)", "collection.name": "\(manifest.name)",
                "collection.files": "\(manifest.files.count)", "collection.size": "\(manifest.totalSize)",
                "files.held": "\(plan.pathsAlreadyPlaced - pathsFromPack)", "files.from.pack": "\(pathsFromPack)",
            ]
        )
        // The members' holders, from the inventories of the peers that offer the folder.
        let holders = Self.swarmFiles(
            await Self.inventories(
                of: self.table.servingPeers().filter { collection.holders.contains($0.id) },
                timeout: self.configuration.inventoryTimeout,
                settings: self.settings
            )
        )
        let holdersByID = Dictionary(holders.map { ($0.id, $0.holders) }, uniquingKeysWith: { first, _ in first })
        let outcome: CollectionFetchPlan.Action? = try await withThrowingTaskGroup(
            of: (FileID, Result<[PeerID: Int64], P2PError>).self
        ) { tasks in
            func perform(_ actions: [CollectionFetchPlan.Action]) -> CollectionFetchPlan.Action? {
                for action in actions {
                    switch action {
                    case .fetch(let fetch):
                        tasks.addTask {
                            do {
                                let bytes = try await self.fetchMember(
                                    fetch,
                                    into: tree,
                                    holders: holdersByID[fetch.fileID] ?? [:],
                                    deadline: deadline
                                )
                                return (fetch.fileID, .success(bytes))
                            } catch let error as P2PError {
                                return (fetch.fileID, .failure(error))
                            } catch {
                                return (fetch.fileID, .failure(P2PError(code: .storage, "\(error)")))
                            }
                        }
                    case .complete, .fail:
                        return action
                    }
                }
                return nil
            }
            if let end = perform(plan.start()) { return end }
            while let (id, result) = try await tasks.next() {
                let actions: [CollectionFetchPlan.Action]
                switch result {
                case .success(let bytes):
                    bytesFromPeer.merge(bytes, uniquingKeysWith: +)
                    actions = plan.placed(id)
                    let elapsed = (ContinuousClock.now - started).seconds
                    progress(
                        DownloadProgress(
                            name: manifest.name.value,
                            bytesHeld: Int64(plan.bytesPlaced),
                            totalBytes: Int64(plan.totalBytes),
                            bytesPerSecond: elapsed > 0 ? Double(bytesFromPeer.values.reduce(0, +)) / elapsed : 0,
                            activePeers: bytesFromPeer.count
                        )
                    )
                case .failure(let error):
                    actions = plan.failed(id, error)
                }
                if let end = perform(actions) { return end }
            }
            return nil
        }
        switch outcome {
        case .complete:
            break
        case .fail(let error):
            throw P2PError(
                code: error.code,
                "\(error.message); \(plan.pathsAlreadyPlaced + plan.pathsPlaced) of \(manifest.files.count) files "
                    + "of \(manifest.name) are kept in \(tree) and the next get resumes"
            )
        case .fetch, nil:
            try Task.checkCancellation()
            throw P2PError(code: .storage, "the download of \(manifest.name) stopped before it was complete")
        }
        try Self.moveTreeIntoPlace(tree, to: target)
        await self.store.remember(cutFiles, in: target)
        await self.store.rescan()
        let seconds = (ContinuousClock.now - started).seconds
        self.logger.info(
            "folder download complete",
            metadata: [
                "collection.id": "\(manifest.id.short)", "file.path": "\(target)", "seconds": "\(seconds)",
                "files.fetched": "\(plan.pathsPlaced + pathsFromPack)",
            ]
        )
        return CollectionDownloadResult(
            manifest: manifest,
            path: target,
            seconds: seconds,
            filesFetched: plan.pathsPlaced + pathsFromPack,
            filesAlreadyHeld: plan.pathsAlreadyPlaced - pathsFromPack,
            bytesFromPeer: bytesFromPeer
        )
    }

    /// Fetches a folder's pack through the swarm, as any file (unless it is here already),
    /// and cuts it into the tree.
    /// - Returns: the files the pack brought, and the bytes received from each peer.
    private func fetchPack(
        _ id: FileID,
        _ layout: CollectionPack,
        of collection: SwarmCollection,
        into tree: FilePath,
        skipping placed: Set<CollectionPath>,
        deadline: ContinuousClock.Instant?,
        progress: @escaping @Sendable (DownloadProgress) -> Void
    ) async throws -> (files: [ChunkStore.CutFile], bytesFromPeer: [PeerID: Int64]) {
        var bytesFromPeer: [PeerID: Int64] = [:]
        if await !self.store.hasComplete(id) {
            // The folder's holders offered the pack with it: they are asked first.
            var holders = Dictionary(uniqueKeysWithValues: collection.holders.map { ($0, ChunkBitmap.full(count: 1)) })
            let manifest = try await self.fetchManifest(
                of: id,
                named: CollectionPack.fileName,
                size: layout.size,
                holders: holders,
                deadline: deadline,
                describing: "the pack \(id.short)"
            )
            await self.store.expectPack(id)
            holders = holders.mapValues { _ in .full(count: manifest.chunkCount) }
            let result = try await self.assemble(
                manifest,
                holders: holders,
                started: .now,
                deadline: deadline,
                destination: await self.store.packPath(of: id),
                progress: progress
            )
            bytesFromPeer = result.bytesFromPeer
        }
        let files = try await self.store.cutPack(id, layout, into: tree, skipping: placed)
        return (files, bytesFromPeer)
    }

    /// Gets the collection manifest from a peer that lists the collection, checked by
    /// `CollectionManifest.decode`. A peer whose manifest is refused is not asked again;
    /// when none gives a valid one, the error says what was wrong with the last refused.
    func fetchCollectionManifest(
        _ collection: SwarmCollection,
        deadline: ContinuousClock.Instant?
    ) async throws -> CollectionManifest {
        // A collection manifest may be larger than a file's: allow the largest accepted.
        let manifestSettings = self.settings.limitingPayload(
            to: max(Frame.defaultMaximumPayloadLength, CollectionManifest.maximumEncodedLength + 1024)
        )
        var refused: [PeerID: P2PError] = [:]
        var patience = LookupPatience(started: .now, deadline: deadline, patience: Self.manifestPatience)
        // Bounded by `patience`, which gives up at the deadline.
        while true {
            let sources = self.table.servingPeers().filter {
                collection.holders.contains($0.id) && refused[$0.id] == nil
            }
            for peer in sources {
                do {
                    let manifest = try await TransferClient.connect(
                        to: peer.transferAddress,
                        settings: manifestSettings,
                        answerTimeout: self.configuration.answerTimeout
                    ) { session in try await session.collectionManifest(for: collection.id) }
                    if let manifest { return manifest }
                } catch let error as P2PError where Self.isInvalidCollectionManifest(error) {
                    refused[peer.id] = error
                    self.logger.warning(
                        "refused a collection manifest",
                        metadata: ["remote.peer.id": "\(peer.id.short)", "error": "\(error)"]
                    )
                } catch {
                    self.logger.info(
                        "no collection manifest from peer",
                        metadata: ["remote.peer.id": "\(peer.id.short)", "error": "\(error)"]
                    )
                }
                try Task.checkCancellation()
            }
            let anyLeft = self.table.servingPeers().contains {
                collection.holders.contains($0.id) && refused[$0.id] == nil
            }
            if !anyLeft, let reason = refused.values.first {
                throw P2PError(
                    code: reason.code,
                    "refused the folder '\(collection.name)' (id \(collection.id.short)) whole, nothing written: "
                        + reason.message
                )
            }
            guard let wait = patience.failed(now: .now) else {
                throw P2PError(
                    code: .notFound,
                    "no peer gave a valid manifest for the folder \(collection.name) (\(collection.id.short))"
                )
            }
            try await Task.sleep(for: max(wait, .milliseconds(250)))
        }
    }

    /// Whether a collection manifest was refused for what it says, not for a slow peer.
    static func isInvalidCollectionManifest(_ error: P2PError) -> Bool {
        error.code == .protocolViolation || error.code == .corrupt || error.code == .badName
    }

    /// Makes the tree's folders (refusing links anywhere in it) and finds which files an
    /// earlier run left in it: each is hashed and kept if it is the file its path names,
    /// removed if not.
    /// - Returns: the paths already in place.
    private func prepareTree(_ tree: FilePath, for manifest: CollectionManifest) async throws -> Set<CollectionPath> {
        try await LinkRefusingFiles.requireFolder(tree.removingLastComponent())
        try await LinkRefusingFiles.requireFolder(tree)
        var folders = Set<String>()
        for member in manifest.files { folders.formUnion(member.path.ancestors) }
        for folder in manifest.emptyFolders {
            folders.formUnion(folder.ancestors)
            folders.insert(folder.value)
        }
        // Outer folders first: "a" sorts before "a/b".
        for folder in folders.sorted() {
            try await LinkRefusingFiles.requireFolder(Self.path(of: try CollectionPath(folder), in: tree))
        }
        var placed = Set<CollectionPath>()
        for member in manifest.files {
            let path = Self.path(of: member.path, in: tree)
            guard let info = try? await FileSystem.shared.info(forFileAt: path, infoAboutSymbolicLink: true) else {
                continue
            }
            if info.type == .regular, info.size == Int64(member.size),
                (try? await ManifestCache.hash(path: path, name: member.path.name))?.id == member.fileID
            {
                placed.insert(member.path)
            } else {
                _ = try? await FileSystem.shared.removeItem(at: path, recursively: true)
            }
        }
        return placed
    }

    /// Where a path of a collection is inside a tree.
    static func path(of relative: CollectionPath, in tree: FilePath) -> FilePath {
        relative.components.reduce(tree) { $0.appending($1.value) }
    }

    /// Fetches one file of a collection and puts it at each of its paths in the tree: from
    /// the swarm (an ordinary verified download, finished at its first path), or copied
    /// from a file this peer already holds, then copied to the other paths.
    /// - Returns: bytes received from each peer.
    private func fetchMember(
        _ fetch: CollectionFetchPlan.Fetch,
        into tree: FilePath,
        holders: [PeerID: ChunkBitmap],
        deadline: ContinuousClock.Instant?
    ) async throws -> [PeerID: Int64] {
        let first = Self.path(of: fetch.paths[0], in: tree)
        var bytesFromPeer: [PeerID: Int64] = [:]
        if let held = await self.store.path(of: fetch.fileID) {
            try await Self.copyVerified(held, to: first, fetch: fetch)
        } else {
            let manifest = try await self.fetchManifest(
                of: fetch.fileID,
                named: fetch.name,
                size: fetch.size,
                holders: holders,
                deadline: deadline,
                describing: "the file at '\(fetch.paths[0])' (id \(fetch.fileID.short))"
            )
            let result = try await self.assemble(
                manifest,
                holders: holders,
                started: .now,
                deadline: deadline,
                destination: first,
                progress: { _ in }
            )
            bytesFromPeer = result.bytesFromPeer
        }
        for other in fetch.paths.dropFirst() {
            try await Self.copyVerified(first, to: Self.path(of: other, in: tree), fetch: fetch)
        }
        return bytesFromPeer
    }

    /// Gets the manifest of a file a folder names (a member, or its pack), checked to
    /// carry the name and size the folder gives it.
    /// - Parameter describing: the file, in words, for the error.
    /// - Throws: `P2PError` (`corrupt`) naming what the manifest says instead; what
    ///   `fetchManifest` throws.
    private func fetchManifest(
        of id: FileID,
        named name: FileName,
        size: UInt64,
        holders: [PeerID: ChunkBitmap],
        deadline: ContinuousClock.Instant?,
        describing what: String
    ) async throws -> Manifest {
        let file = SwarmFile(
            id: id,
            name: name,
            size: size,
            chunkCount: holders.values.first?.count ?? 0,
            holders: holders,
            availableChunks: 0
        )
        let manifest = try await self.fetchManifest(file, deadline: deadline)
        guard manifest.name == name, manifest.size == size else {
            throw P2PError(
                code: .corrupt,
                "\(what) is '\(manifest.name)' of \(manifest.size) bytes by its manifest, not '\(name)' of "
                    + "\(size) bytes; refused"
            )
        }
        return manifest
    }

    /// Copies a file this peer holds into the tree and checks the copy against the file
    /// id (the original may have changed since it was shared).
    private static func copyVerified(
        _ source: FilePath,
        to target: FilePath,
        fetch: CollectionFetchPlan.Fetch
    ) async throws {
        do {
            try await FileSystem.shared.copyItem(at: source, to: target)
        } catch {
            throw P2PError(code: .storage, "cannot copy \(source) to \(target): \(error)")
        }
        guard (try? await ManifestCache.hash(path: target, name: fetch.name))?.id == fetch.fileID else {
            _ = try? await FileSystem.shared.removeItem(at: target)
            throw P2PError(code: .corrupt, "\(source) changed: it is no longer file \(fetch.fileID.short)")
        }
    }

    /// Moves the finished tree to its name, never over anything with content: the name is
    /// checked to be free, and rename(2) then fails on a file or a non-empty folder that
    /// appeared meanwhile (it replaces only an empty folder, which loses nothing).
    static func moveTreeIntoPlace(_ tree: FilePath, to target: FilePath) throws(P2PError) {
        guard faccessat(AT_FDCWD, target.string, F_OK, AT_SYMLINK_NOFOLLOW) != 0, errno == ENOENT else {
            throw P2PError(code: .fileExists, "\(target) appeared while the folder was fetched; it is kept in \(tree)")
        }
        guard rename(tree.string, target.string) == 0 else {
            let reason = String(cString: strerror(errno))
            throw P2PError(code: .storage, "cannot move \(tree) to \(target): \(reason)")
        }
    }
}
