import NIOCore
import NIOPosix
import _NIOFileSystem

extension ChunkStore {
    /// Writes the pack (`CollectionPack`) of a collection this peer offers, and serves it
    /// from now on.
    /// - Parameter manifest: the collection, shared here.
    /// - Returns: the pack's file id, or `nil` when the collection has no pack.
    /// - Throws: `P2PError` (`storage`) if a file cannot be read or the pack written, or a
    ///   file changed since the collection was hashed.
    public func makePack(of manifest: CollectionManifest) async throws -> FileID? {
        guard let pack = CollectionPack(manifest), let root = self.collectionPath(of: manifest.id) else { return nil }
        await self.retirePacks(cutBefore: .now - Self.packLinger)
        let folder = try await self.packDirectory()
        let building = folder.appending("\(manifest.id).pack-building")
        var options = OpenOptions.Write.newFile(replaceExisting: true)
        options.followSymbolicLinks = false
        do {
            try await FileSystem.shared.withFileHandle(forWritingAt: building, options: options) { out in
                for member in pack.members {
                    let source = member.paths[0].components.reduce(root) { $0.appending($1.value) }
                    let bytes = try await FileSystem.shared.withFileHandle(
                        forReadingAt: source,
                        options: LinkRefusingFiles.reading
                    ) { try await $0.readToEnd(maximumSizeAllowed: .bytes(Int64(member.size))) }
                    guard bytes.readableBytes == member.size else {
                        throw P2PError(code: .storage, "\(source) changed since it was hashed")
                    }
                    try await out.write(contentsOf: bytes.readableBytesView, toAbsoluteOffset: Int64(member.offset))
                }
            }
        } catch {
            _ = try? await FileSystem.shared.removeItem(at: building)
            throw await LinkRefusingFiles.openError(error, at: building, doing: "write the pack of \(manifest.name) at")
        }
        let packManifest = try await ManifestCache.hash(path: building, name: CollectionPack.fileName)
        let path = self.packPath(of: packManifest.id)
        do {
            try LinkRefusingFiles.moveIntoPlace(building, to: path, replacing: true)
        } catch {
            _ = try? await FileSystem.shared.removeItem(at: building)
            throw error
        }
        self.servePack(packManifest, at: path)
        return packManifest.id
    }

    /// Cuts a pack this peer holds into the files of a collection's tree being put
    /// together, each checked against its file id before it is written: a file that does
    /// not match is left out, to be fetched on its own. The work (reads, hashes, a file
    /// created and written for each path) is one blocking job on a thread of the pool, off
    /// the store, so that serving goes on meanwhile; the pack is served `packLinger` longer.
    /// - Parameters:
    ///   - id: the pack's file id.
    ///   - pack: its layout.
    ///   - tree: the tree being put together.
    ///   - placed: paths already in the tree, left alone.
    /// - Returns: the files now in the tree from the pack, with their manifests.
    /// - Throws: `P2PError` (`storage`) if the pack cannot be read or a file written.
    public nonisolated func cutPack(
        _ id: FileID,
        _ pack: CollectionPack,
        into tree: FilePath,
        skipping placed: Set<CollectionPath>
    ) async throws -> [CutFile] {
        guard let packPath = await self.path(of: id) else {
            throw P2PError(code: .storage, "the pack \(id.short) is not here")
        }
        let files = try await NIOThreadPool.singleton.runIfActive {
            try PackCutter.cut(packPath, id: id, pack, into: tree, skipping: placed)
        }
        await self.packCut(id)
        return files
    }

    /// A file cut from a pack: where it is in the tree, and its manifest.
    public struct CutFile: Sendable {
        /// Its path in the collection.
        public var path: CollectionPath
        /// Its manifest, made from the bytes written.
        public var manifest: Manifest
    }
}
