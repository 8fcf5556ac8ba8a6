import Logging
import _NIOFileSystem

extension ChunkStore {
    /// Offers what `path` names from now on, and describes it for a delivery: a folder as a
    /// collection (`share(folder:)`) with the pack of its small files (`makePack(of:)`),
    /// anything else as one file (`share(file:)`).
    /// - Parameter path: a file or a folder; never followed through a symbolic link.
    /// - Returns: the item to offer.
    /// - Throws: `P2PError` (`badName`, `notFound`) saying what is wrong with it.
    public func shareForDelivery(_ path: FilePath) async throws(P2PError) -> DeliveryItem {
        let info = try? await FileSystem.shared.info(forFileAt: path, infoAboutSymbolicLink: true)
        if info?.type == .directory {
            let manifest = try await self.share(folder: path)
            // Without its pack the folder still travels, file by file.
            var pack: FileID? = nil
            do {
                pack = try await self.makePack(of: manifest)
            } catch {
                self.logger.warning(
                    "cannot pack the folder's small files; they travel one by one",
                    metadata: ["file.path": "\(path)", "error": "\(error)"]
                )
            }
            return DeliveryItem(
                kind: .collection,
                id: manifest.id,
                name: manifest.name,
                size: manifest.totalSize,
                pack: pack
            )
        }
        let manifest = try await self.share(file: path)
        return DeliveryItem(id: manifest.id, name: manifest.name, size: manifest.size)
    }
}
