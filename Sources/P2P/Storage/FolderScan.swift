import _NIOFileSystem

/// What is inside a folder shared as a collection, found without following a link and
/// without reading anything outside it.
struct FolderScan: Sendable {
    /// A regular file of the folder.
    struct File: Sendable {
        /// Its path relative to the folder.
        var relative: CollectionPath
        /// Its path on disk.
        var path: FilePath
        /// Its size and modification time, as listed.
        var info: FileInfo
    }

    /// The folder's regular files.
    var files: [File] = []
    /// Its folders that hold nothing shared.
    var emptyFolders: [CollectionPath] = []
    /// What was not taken, and why: symbolic links, names unsafe elsewhere, anything that
    /// is neither a file nor a folder, entries past the bounds.
    var skipped: [(path: FilePath, reason: String)] = []

    /// Walks `root`, depth first. Symbolic links are never followed (they could name any
    /// file on the machine); hidden entries (a leading `.`) are not shared; at most
    /// `CollectionManifest.maximumEntryCount` entries and `CollectionPath.maximumDepth`
    /// levels are taken.
    /// - Parameter root: the folder.
    /// - Returns: what it holds.
    static func walk(_ root: FilePath) async -> FolderScan {
        var scan = FolderScan()
        // Folders still to list: their path on disk and relative to the root.
        var pending: [(path: FilePath, relative: String)] = [(root, "")]
        var entries = 0
        while let (folder, relative) = pending.popLast() {
            var heldSomething = false
            do {
                try await FileSystem.shared.withDirectoryHandle(atPath: folder) { handle in
                    for try await entry in handle.listContents() {
                        let name = entry.name.string
                        guard !name.hasPrefix(".") else { continue }
                        let childRelative = relative.isEmpty ? name : relative + "/" + name
                        guard let path = try? CollectionPath(childRelative) else {
                            scan.skipped.append((entry.path, "its name or path is not accepted in a collection"))
                            continue
                        }
                        guard entries < CollectionManifest.maximumEntryCount else {
                            scan.skipped.append(
                                (entry.path, "past \(CollectionManifest.maximumEntryCount) entries in one folder")
                            )
                            continue
                        }
                        guard
                            let info = try? await FileSystem.shared.info(
                                forFileAt: entry.path,
                                infoAboutSymbolicLink: true
                            )
                        else { continue }
                        switch info.type {
                        case .regular:
                            entries += 1
                            heldSomething = true
                            scan.files.append(File(relative: path, path: entry.path, info: info))
                        case .directory:
                            entries += 1
                            heldSomething = true
                            pending.append((entry.path, childRelative))
                        case .symlink:
                            scan.skipped.append((entry.path, "a symbolic link is not followed"))
                        default:
                            scan.skipped.append((entry.path, "neither a file nor a folder"))
                        }
                    }
                }
            } catch {
                scan.skipped.append((folder, "cannot be listed: \(error)"))
            }
            if !heldSomething, !relative.isEmpty, let path = try? CollectionPath(relative) {
                scan.emptyFolders.append(path)
            }
        }
        return scan
    }
}
