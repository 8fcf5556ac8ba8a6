import Logging
import NIOCore
import _NIOFileSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One file a peer offers, and which of its chunks it holds.
public struct InventoryEntry: Sendable, Equatable {
    /// The file's manifest summary and id.
    public var id: FileID
    /// The file's name.
    public var name: FileName
    /// Its size in bytes.
    public var size: UInt64
    /// Its chunk size.
    public var chunkSize: Int
    /// The chunks held.
    public var bitmap: ChunkBitmap

    /// Creates an entry.
    public init(id: FileID, name: FileName, size: UInt64, chunkSize: Int, bitmap: ChunkBitmap) {
        self.id = id
        self.name = name
        self.size = size
        self.chunkSize = chunkSize
        self.bitmap = bitmap
    }
}

/// What happened to a pushed chunk.
public enum PushOutcome: Sendable, Equatable {
    /// Verified and kept.
    case stored
    /// Already held here.
    case duplicate
    /// Did not match the manifest: length or SHA-256.
    case corrupt
    /// The cache is full.
    case cacheFull
}

/// Every chunk a peer holds, on disk: the files it shares, the downloads in progress, and
/// the chunks distribution pushed to it. Reads come from whichever holds the chunk.
public actor ChunkStore {
    /// Where things are kept.
    public let configuration: StorageConfiguration

    private struct CompleteFile {
        var manifest: Manifest
        var path: FilePath
    }

    let logger: Logger
    private let manifestCache: ManifestCache
    private var complete: [FileID: CompleteFile] = [:]
    private var readHandles: [FileID: ReadFileHandle] = [:]
    /// Reads under way on each open handle: only a handle with none is closed to make room.
    private var handleReaders: [FileID: Int] = [:]
    private var downloads: [FileID: ChunkFile] = [:]
    /// Reads waiting for a download to finish (its `.partial` closed, not yet moved to its
    /// name): they are answered from the finished file.
    private var finishing: [FileID: [CheckedContinuation<Void, Never>]] = [:]
    private var cached: [FileID: ChunkFile] = [:]
    private var cachedBytes: Int64 = 0
    private var knownManifests: [FileID: Manifest] = [:]
    /// The folders shared as collections, by collection id, with where each is.
    private var collections: [FileID: (manifest: CollectionManifest, root: FilePath)] = [:]
    /// Packs (`CollectionPack`) this peer serves, made here for a delivery or fetched for
    /// one: served as any complete file, never listed, kept while the peer runs.
    private var packs: [FileID: CompleteFile] = [:]
    /// Packs being fetched: their chunks are served, never listed.
    private var packDownloads: Set<FileID> = []
    /// When each fetched pack was cut into its folder: it is served a while longer, for
    /// targets still fetching it, then removed.
    private var packsCut: [FileID: ContinuousClock.Instant] = [:]
    /// How long a pack stays served after it was cut into its folder.
    static let packLinger: Duration = .seconds(60)
    /// How old a pack file must be for a starting peer to take it for one an earlier run
    /// left (a younger one may be another running peer's that shares the downloads folder).
    static let stalePackAge: Duration = .seconds(600)
    /// The encoded size of the manifests `remember` added.
    private var knownManifestBytes = 0

    private var partialsDirectory: FilePath { self.configuration.stateDirectory.appending("partials") }
    /// Where downloads in progress are assembled: inside the downloads folder, so that a
    /// finished file is renamed into place on the same file system, under a name made of
    /// the file id, so that two downloads of different files that share a name never
    /// share a partial file, and any accepted name fits once it is moved into place.
    private var partialDataDirectory: FilePath {
        self.configuration.downloadsDirectory.appending(Self.partialFolderName)
    }

    /// The folder inside the downloads folder that holds downloads in progress.
    public static let partialFolderName = ".p2p-partials"

    /// Where the data of the download of `id` is assembled.
    /// - Parameter id: the file.
    /// - Returns: the path of its partial file.
    public func partialPath(of id: FileID) -> FilePath {
        self.partialDataDirectory.appending("\(id).partial")
    }

    /// Where the pack `id` is kept while this peer runs: beside the partial files, on the
    /// file system a fetched pack is assembled on.
    /// - Parameter id: the pack's file id.
    public func packPath(of id: FileID) -> FilePath {
        self.partialDataDirectory.appending("\(id).pack")
    }

    /// The folder packs are written in (made if missing, refused if it is a link).
    func packDirectory() async throws -> FilePath {
        try await LinkRefusingFiles.requireFolder(self.partialDataDirectory)
        return self.partialDataDirectory
    }

    /// Serves a pack written here, from now on, without listing it.
    /// - Parameters:
    ///   - manifest: the pack's manifest.
    ///   - path: where it is.
    func servePack(_ manifest: Manifest, at path: FilePath) {
        let file = CompleteFile(manifest: manifest, path: path)
        self.packs[manifest.id] = file
        self.complete[manifest.id] = file
    }

    /// Takes the manifests of files cut from a pack into a folder now at `root`, so that
    /// the rescan that shares the folder does not hash them again.
    /// - Parameters:
    ///   - files: what `cutPack` returned.
    ///   - root: where the folder is now.
    public func remember(_ files: [CutFile], in root: FilePath) async {
        for file in files {
            let path = file.path.components.reduce(root) { $0.appending($1.value) }
            // Keyed as the rescan will look: by what the file system says of the file now.
            guard let info = try? await FileSystem.shared.info(forFileAt: path, infoAboutSymbolicLink: true),
                info.type == .regular
            else { continue }
            await self.manifestCache.remember(
                file.manifest,
                of: path,
                size: info.size,
                modified: Int64(info.lastDataModificationTime.seconds) * 1_000_000_000
                    + Int64(info.lastDataModificationTime.nanoseconds)
            )
        }
    }

    /// Marks the download of `id` as a pack's: its chunks are served as they arrive, and
    /// neither it nor the finished pack is ever listed.
    /// - Parameter id: the pack's file id, whose manifest is checked to be a pack's.
    public func expectPack(_ id: FileID) async {
        self.packDownloads.insert(id)
        await self.retirePacks(cutBefore: .now - Self.packLinger)
    }

    /// Notes that a fetched pack has been cut into its folder: it is removed once it has
    /// lingered `packLinger`, when the next pack starts or the store closes.
    /// - Parameter id: the pack's file id.
    public func packCut(_ id: FileID) {
        if self.packs[id] != nil { self.packsCut[id] = .now }
    }

    /// Removes the fetched packs cut into their folders before `instant`.
    func retirePacks(cutBefore instant: ContinuousClock.Instant) async {
        for (id, cut) in self.packsCut where cut < instant {
            self.packsCut[id] = nil
            guard let pack = self.packs.removeValue(forKey: id) else { continue }
            self.complete[id] = nil
            if let handle = self.readHandles.removeValue(forKey: id) {
                await closeEvenIfCancelled { try await handle.close() }
            }
            _ = try? await FileSystem.shared.removeItem(at: pack.path)
        }
    }

    /// Removes the packs an earlier run left: a pack is served only by the run that made
    /// or fetched it, and removed when that run closes its store.
    private func removeStalePacks() async {
        let now = Int64(time(nil))
        for (path, name, info) in await self.regularFiles(in: self.partialDataDirectory)
        where name.value.hasSuffix(".pack") || name.value.hasSuffix(".pack-building") {
            guard now - Int64(info.lastDataModificationTime.seconds) > Self.stalePackAge.components.seconds else {
                continue
            }
            _ = try? await FileSystem.shared.removeItem(at: path)
        }
    }
    private var cacheDirectory: FilePath { self.configuration.stateDirectory.appending("cache") }

    private init(configuration: StorageConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.manifestCache = ManifestCache(directory: configuration.stateDirectory.appending("manifests"))
    }

    /// Opens the store: checks the folders, reopens the chunk cache and scans the shared
    /// files.
    /// - Parameters:
    ///   - configuration: the folders and limits.
    ///   - logger: where to log.
    /// - Returns: the store.
    /// - Throws: `P2PError` (`badFolder`) naming a folder that is missing or unusable.
    public static func open(configuration: StorageConfiguration, logger: Logger) async throws -> ChunkStore {
        try await Self.requireDirectory(
            configuration.shareDirectory,
            role: "share",
            create: configuration.createShareDirectory
        )
        try await Self.requireDirectory(
            configuration.downloadsDirectory,
            role: "downloads",
            create: configuration.createDownloadsDirectory
        )
        try await Self.requireDirectory(configuration.stateDirectory, role: "state", create: true)
        for sub in ["partials", "cache", "manifests"] {
            do {
                try await LinkRefusingFiles.requireFolder(configuration.stateDirectory.appending(sub))
            } catch {
                throw P2PError(code: .badFolder, "state folder \(configuration.stateDirectory): \(error)")
            }
        }
        let store = ChunkStore(configuration: configuration, logger: logger)
        await store.removeStalePacks()
        await store.reopenCache()
        await store.reopenPartials()
        await store.rescan()
        return store
    }

    private static func requireDirectory(_ path: FilePath, role: String, create: Bool) async throws {
        let fileSystem = FileSystem.shared
        let info = try? await fileSystem.info(forFileAt: path, infoAboutSymbolicLink: false)
        if let info {
            guard info.type == .directory else {
                throw P2PError(code: .badFolder, "\(role) folder \(path) is not a folder")
            }
            return
        }
        guard create else {
            throw P2PError(code: .badFolder, "\(role) folder \(path) does not exist")
        }
        do {
            try await fileSystem.createDirectory(at: path, withIntermediateDirectories: true, permissions: nil)
        } catch {
            throw P2PError(code: .badFolder, "cannot create \(role) folder \(path): \(error)")
        }
    }

    // MARK: Scanning

    /// Looks at the share and downloads folders again: new files are hashed (or their
    /// manifest taken from the cache) and offered, removed ones are no longer offered.
    public func rescan() async {
        var found: [FileID: CompleteFile] = [:]
        // Files named one by one first: one that is also in a folder is served by the path
        // it was named by.
        var candidates = await self.namedFiles()
        for directory in [self.configuration.shareDirectory, self.configuration.downloadsDirectory] {
            for (path, name, info) in await self.regularFiles(in: directory) {
                if directory == self.configuration.downloadsDirectory && name.value.hasSuffix(".partial") { continue }
                candidates.append((path, name, info))
            }
        }
        for (path, name, info) in candidates {
            do {
                let manifest = try await self.manifestCache.manifest(
                    of: path,
                    name: name,
                    size: info.size,
                    modified: Int64(info.lastDataModificationTime.seconds) * 1_000_000_000
                        + Int64(info.lastDataModificationTime.nanoseconds)
                )
                if found[manifest.id] == nil { found[manifest.id] = CompleteFile(manifest: manifest, path: path) }
            } catch {
                self.logger.warning("cannot share file", metadata: ["file.path": "\(path)", "error": "\(error)"])
            }
        }
        var collections: [FileID: (manifest: CollectionManifest, root: FilePath)] = [:]
        // Folders named one by one first, as files are; then the folders' subfolders.
        var folders: [(FilePath, FileName)] = self.namedFolderPaths.compactMap { path in
            path.lastComponent.flatMap { try? FileName($0.string) }.map { (path, $0) }
        }
        for directory in [self.configuration.shareDirectory, self.configuration.downloadsDirectory] {
            folders += await self.subfolders(in: directory)
        }
        for (root, name) in folders {
            guard let (collection, members) = await self.collection(at: root, named: name) else { continue }
            if collections[collection.id] == nil { collections[collection.id] = (collection, root) }
            for (manifest, path) in members where found[manifest.id] == nil {
                found[manifest.id] = CompleteFile(manifest: manifest, path: path)
            }
        }
        self.collections = collections
        for (id, pack) in self.packs where found[id] == nil { found[id] = pack }
        for (id, _) in self.complete where found[id] == nil || found[id]?.path != self.complete[id]?.path {
            if let handle = self.readHandles.removeValue(forKey: id) {
                await closeEvenIfCancelled { try await handle.close() }
            }
        }
        let added = found.keys.filter { self.complete[$0] == nil }
        self.complete = found
        for id in added {
            self.logger.debug(
                "sharing file",
                metadata: ["file.id": "\(id.short)", "file.name": "\(found[id]!.manifest.name)"]
            )
        }
    }

    /// The regular files of a folder whose names are valid file names. Symbolic links are
    /// never followed: a link in the share folder could name any file on the machine, so
    /// it is skipped and logged once.
    private func regularFiles(in directory: FilePath) async -> [(FilePath, FileName, FileInfo)] {
        var files: [(FilePath, FileName, FileInfo)] = []
        var links: [FilePath] = []
        do {
            try await FileSystem.shared.withDirectoryHandle(atPath: directory) { handle in
                for try await entry in handle.listContents() {
                    let name = entry.name.string
                    // Hidden files are not shared; names unsafe elsewhere are not offered.
                    guard !name.hasPrefix("."), let fileName = try? FileName(name) else { continue }
                    guard
                        let info = try? await FileSystem.shared.info(
                            forFileAt: entry.path,
                            infoAboutSymbolicLink: true
                        )
                    else { continue }
                    switch info.type {
                    case .regular: files.append((entry.path, fileName, info))
                    case .symlink: links.append(entry.path)
                    default: continue
                    }
                }
            }
        } catch {
            // A folder that cannot be listed offers what was listed before the error.
        }
        for link in links where self.loggedSkips.insert(link.string).inserted {
            self.logger.warning(
                "not sharing a symbolic link: only regular files inside the folder are served",
                metadata: ["file.path": "\(link)"]
            )
        }
        return files
    }

    /// Offers one file from outside the share folder (`p2p send PATH`), from now on.
    /// - Parameter path: the file; a regular file (not a symbolic link) whose name the
    ///   network takes.
    /// - Returns: its manifest (hashed now, or taken from the manifest cache).
    /// - Throws: `P2PError` (`badName`, `notFound`) saying what is wrong with it.
    public func share(file path: FilePath) async throws(P2PError) -> Manifest {
        guard let component = path.lastComponent else { throw P2PError(code: .badName, "\(path) names no file") }
        _ = try FileName(component.string)
        let info = try? await FileSystem.shared.info(forFileAt: path, infoAboutSymbolicLink: true)
        guard let info, info.type == .regular else {
            throw P2PError(
                code: .notFound,
                info == nil ? "\(path) does not exist" : "\(path) is not a regular file (links are not followed)"
            )
        }
        if !self.namedFilePaths.contains(path) { self.namedFilePaths.append(path) }
        await self.rescan()
        guard let shared = self.complete.values.first(where: { $0.path == path }) else {
            throw P2PError(code: .notFound, "\(path) could not be read and hashed")
        }
        return shared.manifest
    }

    /// Offers one folder from outside the share folder as a collection (`p2p send FOLDER`),
    /// from now on, as a subfolder of the share folder would be.
    /// - Parameter path: the folder; a real folder (not a symbolic link) whose name the
    ///   network takes.
    /// - Returns: its collection manifest.
    /// - Throws: `P2PError` (`badName`, `notFound`) saying what is wrong with it.
    public func share(folder path: FilePath) async throws(P2PError) -> CollectionManifest {
        guard let component = path.lastComponent else { throw P2PError(code: .badName, "\(path) names no folder") }
        _ = try FileName(component.string)
        let info = try? await FileSystem.shared.info(forFileAt: path, infoAboutSymbolicLink: true)
        guard let info, info.type == .directory else {
            throw P2PError(
                code: .notFound,
                info == nil ? "\(path) does not exist" : "\(path) is not a folder (links are not followed)"
            )
        }
        if !self.namedFolderPaths.contains(path) { self.namedFolderPaths.append(path) }
        await self.rescan()
        guard let shared = self.collections.values.first(where: { $0.root == path }) else {
            throw P2PError(code: .notFound, "\(path) could not be read as a folder to share")
        }
        return shared.manifest
    }

    /// Folders offered one by one, besides the share and downloads folders' subfolders
    /// (`share(folder:)`).
    private var namedFolderPaths: [FilePath] = []

    /// Files offered one by one, besides the folders' (`share(file:)`).
    private var namedFilePaths: [FilePath] = []

    /// The files offered one by one that are (still) regular files, never symbolic links,
    /// with names the network takes.
    private func namedFiles() async -> [(FilePath, FileName, FileInfo)] {
        var files: [(FilePath, FileName, FileInfo)] = []
        for path in self.namedFilePaths {
            guard let component = path.lastComponent, let name = try? FileName(component.string),
                let info = try? await FileSystem.shared.info(forFileAt: path, infoAboutSymbolicLink: true),
                info.type == .regular
            else {
                if self.loggedSkips.insert(path.string).inserted {
                    self.logger.warning(
                        "not sharing a named file: it is not a regular file with a name others can take",
                        metadata: ["file.path": "\(path)"]
                    )
                }
                continue
            }
            files.append((path, name, info))
        }
        return files
    }
    /// Links already logged by `regularFiles`, entries of shared folders and files offered
    /// one by one already said to be skipped, so that each is said once, not every rescan.
    private var loggedSkips: Set<String> = []

    /// The real folders (not links to folders) of `directory` whose names are valid file
    /// names and not hidden: each is shared as a collection.
    private func subfolders(in directory: FilePath) async -> [(FilePath, FileName)] {
        var folders: [(FilePath, FileName)] = []
        do {
            try await FileSystem.shared.withDirectoryHandle(atPath: directory) { handle in
                for try await entry in handle.listContents() {
                    guard let name = try? FileName(entry.name.string),
                        let info = try? await FileSystem.shared.info(
                            forFileAt: entry.path,
                            infoAboutSymbolicLink: true
                        ),
                        info.type == .directory
                    else { continue }
                    folders.append((entry.path, name))
                }
            }
        } catch {
            // A folder that cannot be listed offers the subfolders listed before the error.
        }
        return folders.sorted { $0.1 < $1.1 }
    }

    /// The collection a shared folder makes: the manifest of each of its files (from the
    /// cache, or hashed), named after the last component of its path. What the walk
    /// skips, or a file that cannot be read, is logged once and left out.
    private func collection(
        at root: FilePath,
        named name: FileName
    ) async -> (CollectionManifest, [(Manifest, FilePath)])? {
        let scan = await FolderScan.walk(root)
        var skipped = scan.skipped
        var members: [CollectionManifest.Member] = []
        var manifests: [(Manifest, FilePath)] = []
        for (file, result) in zip(scan.files, await Self.manifests(of: scan.files, cache: self.manifestCache)) {
            switch result {
            case .success(let manifest):
                members.append(CollectionManifest.Member(path: file.relative, fileID: manifest.id, size: manifest.size))
                manifests.append((manifest, file.path))
            case .failure(let error):
                skipped.append((file.path, "cannot be read: \(error)"))
            }
        }
        for (path, reason) in skipped where self.loggedSkips.insert(path.string).inserted {
            self.logger.warning(
                "not sharing an entry of a shared folder",
                metadata: ["file.path": "\(path)", "reason": "\(reason)", "collection.name": "\(name)"]
            )
        }
        do {
            return (try CollectionManifest(name: name, files: members, emptyFolders: scan.emptyFolders), manifests)
        } catch {
            self.logger.warning("cannot share folder", metadata: ["file.path": "\(root)", "error": "\(error)"])
            return nil
        }
    }

    /// The manifests of a folder's files, in order, from the cache or hashed, several at
    /// once: for a folder of many small files the time goes to opening, reading and
    /// closing each and writing its cache record, which overlap.
    private static func manifests(
        of files: [FolderScan.File],
        cache: ManifestCache
    ) async -> [Result<Manifest, P2PError>] {
        var results = [Result<Manifest, P2PError>](
            repeating: .failure(P2PError(code: .storage, "not hashed")),
            count: files.count
        )
        await withTaskGroup(of: (Int, Result<Manifest, P2PError>).self) { group in
            var next = 0
            func start() {
                let index = next
                let file = files[index]
                next += 1
                group.addTask {
                    do {
                        let manifest = try await cache.manifest(
                            of: file.path,
                            name: file.relative.name,
                            size: file.info.size,
                            modified: Int64(file.info.lastDataModificationTime.seconds) * 1_000_000_000
                                + Int64(file.info.lastDataModificationTime.nanoseconds)
                        )
                        return (index, .success(manifest))
                    } catch let error as P2PError {
                        return (index, .failure(error))
                    } catch {
                        return (index, .failure(P2PError(code: .storage, "\(error)")))
                    }
                }
            }
            while next < min(files.count, Self.filesHashedAtOnce) { start() }
            while let (index, result) = await group.next() {
                results[index] = result
                if next < files.count { start() }
            }
        }
        return results
    }

    /// How many files of a folder are hashed at once.
    static let filesHashedAtOnce = 8

    /// The collections (shared folders) this peer offers, by name.
    public func collectionList() -> [CollectionEntry] {
        self.collections.values.map { CollectionEntry($0.manifest) }.sorted { ($0.name, $0.id) < ($1.name, $1.id) }
    }

    /// The manifest of a collection this peer offers.
    /// - Parameter id: the collection id.
    public func collectionManifest(for id: FileID) -> CollectionManifest? { self.collections[id]?.manifest }

    /// Where a collection this peer offers is.
    /// - Parameter id: the collection id.
    public func collectionPath(of id: FileID) -> FilePath? { self.collections[id]?.root }

    private func reopenCache() async {
        for (path, name, _) in await self.regularFiles(in: self.cacheDirectory) where name.value.hasSuffix(".record") {
            guard let manifest = await ChunkFile.manifest(inRecordAt: path) else { continue }
            let dataPath = self.cacheDirectory.appending("\(manifest.id).data")
            guard let file = try? await ChunkFile.open(manifest: manifest, dataPath: dataPath, recordPath: path) else {
                continue
            }
            self.cached[manifest.id] = file
            self.knownManifests[manifest.id] = manifest
            self.cachedBytes += await file.heldBytes
        }
    }

    /// Reopens downloads left unfinished by an earlier run, so that their verified chunks
    /// are offered at once and the next download of the file resumes from them.
    private func reopenPartials() async {
        for (path, name, _) in await self.regularFiles(in: self.partialsDirectory) where name.value.hasSuffix(".record")
        {
            guard let manifest = await ChunkFile.manifest(inRecordAt: path), "\(manifest.id).record" == name.value
            else {
                continue
            }
            let dataPath = self.partialPath(of: manifest.id)
            guard
                (try? await FileSystem.shared.info(forFileAt: dataPath, infoAboutSymbolicLink: true))?.type == .regular,
                let file = try? await ChunkFile.open(manifest: manifest, dataPath: dataPath, recordPath: path)
            else { continue }
            self.downloads[manifest.id] = file
            self.knownManifests[manifest.id] = manifest
            if manifest.name == CollectionPack.fileName { self.packDownloads.insert(manifest.id) }
        }
    }

    // MARK: Reading

    /// What this peer holds: every shared file in full, and the chunks of downloads in
    /// progress and of the cache.
    public func inventory() async -> [InventoryEntry] {
        var entries: [FileID: InventoryEntry] = [:]
        for (id, file) in self.complete where self.packs[id] == nil {
            entries[id] = InventoryEntry(
                id: id,
                name: file.manifest.name,
                size: file.manifest.size,
                chunkSize: file.manifest.chunkSize,
                bitmap: .full(count: file.manifest.chunkCount)
            )
        }
        for chunkFile in Array(self.downloads.values) + Array(self.cached.values) {
            let manifest = chunkFile.manifest
            if self.packDownloads.contains(manifest.id) || self.packs[manifest.id] != nil { continue }
            guard entries[manifest.id] == nil else {
                if var entry = entries[manifest.id], !entry.bitmap.isComplete {
                    for index in await chunkFile.bitmap.indices { entry.bitmap.insert(index) }
                    entries[manifest.id] = entry
                }
                continue
            }
            let bitmap = await chunkFile.bitmap
            guard bitmap.setCount > 0 else { continue }
            entries[manifest.id] = InventoryEntry(
                id: manifest.id,
                name: manifest.name,
                size: manifest.size,
                chunkSize: manifest.chunkSize,
                bitmap: bitmap
            )
        }
        return entries.values.sorted { ($0.name, $0.id) < ($1.name, $1.id) }
    }

    /// What this peer holds of one file, as `inventory()` would list it.
    /// - Parameter id: the file.
    /// - Returns: its entry, or `nil` when no chunk of it is held here.
    public func inventoryEntry(for id: FileID) async -> InventoryEntry? {
        if let file = self.complete[id] {
            return InventoryEntry(
                id: id,
                name: file.manifest.name,
                size: file.manifest.size,
                chunkSize: file.manifest.chunkSize,
                bitmap: .full(count: file.manifest.chunkCount)
            )
        }
        var entry: InventoryEntry? = nil
        for chunkFile in [self.downloads[id], self.cached[id]].compactMap({ $0 }) {
            let manifest = chunkFile.manifest
            let bitmap = await chunkFile.bitmap
            var merged =
                entry
                ?? InventoryEntry(
                    id: id,
                    name: manifest.name,
                    size: manifest.size,
                    chunkSize: manifest.chunkSize,
                    bitmap: ChunkBitmap(count: manifest.chunkCount)
                )
            for index in bitmap.indices { merged.bitmap.insert(index) }
            entry = merged
        }
        return entry.flatMap { $0.bitmap.setCount > 0 ? $0 : nil }
    }

    /// The manifest of a file this peer holds any of, or has seen.
    public func manifest(for id: FileID) -> Manifest? {
        self.complete[id]?.manifest ?? self.downloads[id]?.manifest ?? self.cached[id]?.manifest
            ?? self.knownManifests[id]
    }

    /// Remembers a verified manifest, so that pushed chunks of it can be checked.
    ///
    /// Peers push manifests unasked, each up to a frame's size, so what is remembered is
    /// bounded in bytes as well as in number: past either bound it is forgotten and starts
    /// over (held and cached files keep their manifests elsewhere).
    public func remember(_ manifest: Manifest) {
        guard self.knownManifests[manifest.id] == nil else { return }
        let size = manifest.encoded.count
        if self.knownManifests.count >= Self.maximumKnownManifests
            || self.knownManifestBytes + size > Self.maximumKnownManifestBytes
        {
            self.knownManifests.removeAll()
            self.knownManifestBytes = 0
        }
        self.knownManifests[manifest.id] = manifest
        self.knownManifestBytes += size
    }

    /// The most manifests remembered from peers.
    static let maximumKnownManifests = 4096
    /// The most bytes of manifests remembered from peers.
    static let maximumKnownManifestBytes = 64 << 20

    /// Reads one chunk from wherever it is held.
    /// - Parameters:
    ///   - id: the file.
    ///   - index: the chunk.
    /// - Returns: the chunk's bytes, or `nil` if it is not held here.
    /// - Throws: `P2PError` (`storage`) if the disk read fails.
    public func readChunk(_ id: FileID, index: Int) async throws -> ByteBuffer? {
        if let file = self.complete[id] {
            guard index >= 0 && index < file.manifest.chunkCount else { return nil }
            do {
                var handle: ReadFileHandle
                if let open = self.readHandles[id] {
                    handle = open
                } else {
                    handle = try await FileSystem.shared.openFile(
                        forReadingAt: file.path,
                        options: LinkRefusingFiles.reading
                    )
                    // Another read may have opened it while this one waited: keep one, and
                    // close the other (a handle dropped open is a fatal error in NIO).
                    if let raced = self.readHandles[id] {
                        let extra = handle
                        await closeEvenIfCancelled { try await extra.close() }
                        handle = raced
                    } else {
                        self.readHandles[id] = handle
                    }
                }
                // Counted before anything else waits, so that making room never closes it.
                self.handleReaders[id, default: 0] += 1
                defer { self.releaseReader(of: id) }
                if self.readHandles.count > Self.maximumOpenReadHandles { await self.closeIdleReadHandles() }
                return try await handle.readChunk(file.manifest.range(ofChunk: index), of: id)
            } catch {
                throw P2PError(code: .storage, "cannot read \(file.path): \(error)")
            }
        }
        if self.finishing[id] != nil {
            await self.finished(id)
            return try await self.readChunk(id, index: index)
        }
        if let file = self.downloads[id] {
            do {
                if let bytes = try await file.read(chunk: index) { return bytes }
            } catch  where self.downloads[id] !== file {
                // The download finished while this read waited for the disk, and closed the
                // file under it: the chunk is in the finished file (peers of a crowd ask for
                // it up to the moment a download ends, and after). Read again, which waits
                // for the finish if it is still under way.
                return try await self.readChunk(id, index: index)
            }
        }
        if let file = self.cached[id], let bytes = try await file.read(chunk: index) { return bytes }
        return nil
    }

    /// The most files kept open for reading at once. A shared folder of thousands of small
    /// files would otherwise hold a descriptor for each file ever read, past the usual
    /// limit of 1,024 per process.
    static let maximumOpenReadHandles = 128

    /// How many files are open for reading now.
    var openReadHandleCount: Int { self.readHandles.count }

    private func releaseReader(of id: FileID) {
        let remaining = (self.handleReaders[id] ?? 1) - 1
        self.handleReaders[id] = remaining > 0 ? remaining : nil
    }

    /// Closes open read handles that no read is using until at most
    /// `maximumOpenReadHandles` are open (or every one left is in use).
    private func closeIdleReadHandles() async {
        while self.readHandles.count > Self.maximumOpenReadHandles,
            let idle = self.readHandles.keys.first(where: { self.handleReaders[$0] == nil }),
            let handle = self.readHandles.removeValue(forKey: idle)
        {
            await closeEvenIfCancelled { try await handle.close() }
        }
    }

    /// Returns once a chunk of a download in progress is written (or its write failed, or
    /// the download closed), or the calling task is cancelled; at once if the chunk is
    /// held or the file is not being downloaded.
    /// - Parameters:
    ///   - id: the file.
    ///   - index: the chunk.
    public func waitForWrite(_ id: FileID, index: Int) async {
        guard self.complete[id] == nil, let file = self.downloads[id] else { return }
        await file.waitForWrite(of: index)
    }

    /// Whether the file is held in full.
    public func hasComplete(_ id: FileID) -> Bool { self.complete[id] != nil }

    /// The path of a complete file.
    public func path(of id: FileID) -> FilePath? { self.complete[id]?.path }

    // MARK: Distribution

    /// Verifies a pushed chunk against its manifest and keeps it in the cache.
    /// - Parameters:
    ///   - bytes: the chunk.
    ///   - index: which chunk it claims to be.
    ///   - manifest: the file's verified manifest.
    /// - Returns: what happened to it.
    public func storePushed(_ bytes: ByteBuffer, chunk index: Int, of manifest: Manifest) async -> PushOutcome {
        guard manifest.verify(bytes, chunk: index) else { return .corrupt }
        if self.complete[manifest.id] != nil { return .duplicate }
        if let download = self.downloads[manifest.id] {
            if await download.bitmap.contains(index) { return .duplicate }
            return ((try? await download.write(bytes, chunk: index)) ?? false) ? .stored : .duplicate
        }
        guard self.cachedBytes + Int64(bytes.readableBytes) <= self.configuration.cacheLimit else { return .cacheFull }
        var file: ChunkFile
        if let open = self.cached[manifest.id] {
            file = open
        } else {
            do {
                file = try await ChunkFile.open(
                    manifest: manifest,
                    dataPath: self.cacheDirectory.appending("\(manifest.id).data"),
                    recordPath: self.cacheDirectory.appending("\(manifest.id).record")
                )
            } catch {
                self.logger.warning("cannot open the chunk cache", metadata: ["error": "\(error)"])
                return .cacheFull
            }
            // Pushes from two peers may open the same file at once: keep the first.
            if let raced = self.cached[manifest.id] {
                await file.close()
                file = raced
            } else {
                self.cached[manifest.id] = file
            }
        }
        do {
            guard try await file.write(bytes, chunk: index) else { return .duplicate }
            self.cachedBytes += Int64(bytes.readableBytes)
            return .stored
        } catch {
            self.logger.warning("cannot write to the chunk cache", metadata: ["error": "\(error)"])
            return .cacheFull
        }
    }

    // MARK: Downloads

    /// Opens (or resumes) the download of a file, assembled as `ID.partial` in the
    /// downloads folder's `.p2p-partials` folder. Chunks the cache already holds are
    /// copied in.
    /// - Parameter manifest: the verified manifest.
    /// - Returns: the file being assembled.
    /// - Throws: `P2PError` (`storage`) if it cannot be opened, or if a symbolic link
    ///   stands where it would be written.
    public func beginDownload(_ manifest: Manifest) async throws -> ChunkFile {
        if let open = self.downloads[manifest.id] { return open }
        try await LinkRefusingFiles.requireFolder(self.partialDataDirectory)
        try await LinkRefusingFiles.requireFolder(self.partialsDirectory)
        let file = try await ChunkFile.open(
            manifest: manifest,
            dataPath: self.partialPath(of: manifest.id),
            recordPath: self.partialsDirectory.appending("\(manifest.id).record")
        )
        if let raced = self.downloads[manifest.id] {
            await file.close()
            return raced
        }
        self.downloads[manifest.id] = file
        if let cache = self.cached[manifest.id] {
            for index in await cache.bitmap.indices where await !file.bitmap.contains(index) {
                if let bytes = try? await cache.read(chunk: index), manifest.verify(bytes, chunk: index) {
                    try await file.write(bytes, chunk: index)
                }
            }
        }
        return file
    }

    /// What stands in the downloads folder under the name a download of `manifest` would
    /// take, if anything other than that very file does.
    /// - Parameter manifest: the file to be downloaded.
    /// - Returns: `nil` when the name is free or holds this file; otherwise a description
    ///   of what is there (with its file id when it is a file this peer offers).
    public func conflict(for manifest: Manifest) async -> String? {
        await self.conflict(name: manifest.name, id: manifest.id)
    }

    /// Whether the collection `id` is here whole (a folder shared or downloaded).
    public func hasCollection(_ id: FileID) -> Bool { self.collections[id] != nil }

    /// What stands at `name` in the downloads folder if it is not the folder of collection
    /// `id`, in words; `nil` if nothing or that very folder does.
    public func conflict(folderName name: FileName, id: FileID) async -> String? {
        let target = self.configuration.downloadsDirectory.appending(name.value)
        guard let info = try? await FileSystem.shared.info(forFileAt: target, infoAboutSymbolicLink: true) else {
            return nil
        }
        if self.collections[id]?.root == target { return nil }
        switch info.type {
        case .directory: return "\(target) holds another folder"
        case .symlink: return "\(target) is a symbolic link"
        default: return "\(target) is a file"
        }
    }

    /// What stands at `name` in the downloads folder if it is not the file `id`, in words;
    /// `nil` if nothing or that very file does.
    public func conflict(name: FileName, id: FileID) async -> String? {
        let target = self.configuration.downloadsDirectory.appending(name.value)
        guard let info = try? await FileSystem.shared.info(forFileAt: target, infoAboutSymbolicLink: true) else {
            return nil
        }
        if let held = self.complete.first(where: { $0.value.path == target }) {
            return held.key == id ? nil : "\(target) holds another file (id \(held.key.short))"
        }
        switch info.type {
        case .regular: return "\(target) holds another file"
        case .symlink: return "\(target) is a symbolic link"
        default: return "\(target) is not a file"
        }
    }

    /// Ends a download whose chunks are all verified: every chunk is read back and
    /// checked against the manifest once more, then the partial file is moved to
    /// `NAME` in the downloads folder and shared from then on.
    /// - Parameters:
    ///   - id: the file.
    ///   - replacingExisting: whether a regular file already at `NAME` is replaced (the
    ///     user asked for it); otherwise it is never overwritten.
    ///   - destination: where the file goes instead of `NAME` in the downloads folder (a
    ///     member of a collection goes to its path in the collection's tree being put
    ///     together); nothing there is ever replaced.
    /// - Returns: the final path.
    /// - Throws: `P2PError`: `corrupt` when chunks changed on disk after they were
    ///   verified (they are no longer held, and the download stays open to fetch them
    ///   again); `fileExists` when something else is at `NAME` (the partial is kept);
    ///   `storage` if chunks are missing or the file cannot be moved into place.
    public func finishDownload(
        _ id: FileID,
        replacingExisting: Bool = false,
        at destination: FilePath? = nil
    ) async throws -> FilePath {
        guard let file = self.downloads[id] else {
            throw P2PError(code: .storage, "no download in progress for \(id.short)")
        }
        guard await file.bitmap.isComplete else {
            throw P2PError(code: .storage, "download of \(file.manifest.name) is not complete")
        }
        let verifying = ContinuousClock.now
        let changed = try await file.verifyHeldChunks()
        self.logger.debug(
            "read the download back and verified it",
            metadata: [
                "file.id": "\(id.short)", "file.size": "\(file.manifest.size)",
                "seconds": "\((ContinuousClock.now - verifying).seconds)",
            ]
        )
        guard changed.isEmpty else {
            throw P2PError(
                code: .corrupt,
                "\(changed.count) chunks of \(file.manifest.name) changed on disk after they were verified "
                    + "(chunks \(ChunkBitmap.ranges(changed)))"
            )
        }
        let manifest = file.manifest
        let target = destination ?? self.configuration.downloadsDirectory.appending(manifest.name.value)
        if destination != nil,
            (try? await FileSystem.shared.info(forFileAt: target, infoAboutSymbolicLink: true)) != nil
        {
            await self.suspendDownload(id)
            throw P2PError(code: .fileExists, "\(target) is taken; the download (id \(id.short)) is kept")
        }
        if destination == nil, let conflict = await self.conflict(for: manifest) {
            let existing = try? await FileSystem.shared.info(forFileAt: target, infoAboutSymbolicLink: true)
            guard replacingExisting, existing?.type == .regular else {
                await self.suspendDownload(id)
                throw P2PError(
                    code: .fileExists,
                    "\(conflict); the download (id \(id.short)) is kept as \(file.dataPath)"
                )
            }
        }
        // Reads that come from now until the file has its name wait for it (`readChunk`).
        self.downloads[id] = nil
        self.finishing[id] = []
        defer {
            for waiter in self.finishing.removeValue(forKey: id) ?? [] { waiter.resume() }
        }
        await file.close()
        let fileSystem = FileSystem.shared
        do {
            try LinkRefusingFiles.moveIntoPlace(
                file.dataPath,
                to: target,
                replacing: destination == nil && replacingExisting
            )
        } catch {
            // The partial and its record stay: the next download resumes from them.
            throw P2PError(code: error.code, "\(error.message); the download is kept as \(file.dataPath)")
        }
        _ = try? await fileSystem.removeItem(at: file.recordPath)
        for (other, held) in self.complete where held.path == target && other != id {
            self.complete[other] = nil
            if let handle = self.readHandles.removeValue(forKey: other) {
                await closeEvenIfCancelled { try await handle.close() }
            }
        }
        self.complete[id] = CompleteFile(manifest: manifest, path: target)
        if self.packDownloads.remove(id) != nil { self.packs[id] = CompleteFile(manifest: manifest, path: target) }
        if let cache = self.cached.removeValue(forKey: id) {
            self.cachedBytes -= await cache.heldBytes
            await cache.close(removingRecord: true)
            _ = try? await fileSystem.removeItem(at: cache.dataPath)
        }
        return target
    }

    /// Returns once the download of `id` that is finishing has finished (or failed to).
    private func finished(_ id: FileID) async {
        await withCheckedContinuation { waiter in
            if self.finishing[id] != nil { self.finishing[id]?.append(waiter) } else { waiter.resume() }
        }
    }

    /// Closes a download without finishing it: the `.partial` and its record stay, and
    /// the next download of the file resumes from them.
    /// - Parameter id: the file.
    public func suspendDownload(_ id: FileID) async {
        guard let file = self.downloads.removeValue(forKey: id) else { return }
        await file.close()
    }

    /// Closes every open file: downloads in progress keep their `.partial` and record.
    /// Call before dropping the store.
    public func close() async {
        for handle in self.readHandles.values { await closeEvenIfCancelled { try await handle.close() } }
        self.readHandles.removeAll()
        for pack in self.packs.values { _ = try? await FileSystem.shared.removeItem(at: pack.path) }
        self.packs.removeAll()
        for file in self.downloads.values { await file.close() }
        self.downloads.removeAll()
        for file in self.cached.values { await file.close() }
        self.cached.removeAll()
    }

    /// Bytes held in the chunk cache.
    public var cacheUsage: Int64 { self.cachedBytes }
}
