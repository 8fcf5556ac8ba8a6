import _NIOFileSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How p2p opens the files it reads and writes: never through a symbolic link.
///
/// The downloads, share and state folders may be writable by others (a shared folder on a
/// team machine). A link planted where p2p is about to write (`.partial`, a record, the
/// chunk cache) would otherwise send downloaded bytes to wherever it points, and a link in
/// the share folder would serve a file from outside it. So the last component of every
/// path p2p opens is opened with `O_NOFOLLOW`, and the folders p2p makes inside the
/// user's folders must be real folders.
enum LinkRefusingFiles {
    /// Options to open a file for writing, created if missing, that fail on a link.
    static func writing(createIfNecessary: Bool = true) -> OpenOptions.Write {
        var options = OpenOptions.Write.modifyFile(createIfNecessary: createIfNecessary)
        options.followSymbolicLinks = false
        return options
    }

    /// Options to open a file for reading that fail on a link.
    static let reading = OpenOptions.Read(followSymbolicLinks: false)

    /// Whether there is a symbolic link at `path` (not following it).
    static func isLink(_ path: FilePath) async -> Bool {
        let info = try? await FileSystem.shared.info(forFileAt: path, infoAboutSymbolicLink: true)
        return info?.type == .symlink
    }

    /// The error for a failed open: a refusal naming the link if a link is what stood
    /// there, the file system's own words otherwise.
    static func openError(_ error: any Error, at path: FilePath, doing what: String) async -> P2PError {
        if let error = error as? P2PError { return error }
        if await Self.isLink(path) {
            return P2PError(code: .storage, "refused to \(what) \(path): it is a symbolic link")
        }
        return P2PError(code: .storage, "cannot \(what) \(path): \(error)")
    }

    /// Makes sure `path` is a real folder (not a link to one), creating it if missing.
    /// - Throws: `P2PError` (`storage`) naming the path when something else is there.
    static func requireFolder(_ path: FilePath) async throws {
        let fileSystem = FileSystem.shared
        if let info = try? await fileSystem.info(forFileAt: path, infoAboutSymbolicLink: true) {
            switch info.type {
            case .directory: return
            case .symlink: throw P2PError(code: .storage, "refused to use \(path): it is a symbolic link")
            default: throw P2PError(code: .storage, "refused to use \(path): it is not a folder")
            }
        }
        do {
            try await fileSystem.createDirectory(at: path, withIntermediateDirectories: false, permissions: nil)
        } catch {
            // Another peer may have made it meanwhile; what counts is what is there now.
            let info = try? await fileSystem.info(forFileAt: path, infoAboutSymbolicLink: true)
            guard info?.type == .directory else {
                throw P2PError(code: .storage, "cannot create \(path): \(error)")
            }
        }
    }

    /// Moves a finished file to its name. Without `replacing`, the move never replaces
    /// anything: a hard link to the target fails if anything at all (a file, a link) is
    /// there, atomically, so a file that appeared meanwhile is not overwritten. With it,
    /// rename(2) replaces a file atomically, and a link at the target is replaced, never
    /// written through.
    /// - Throws: `P2PError`: `fileExists` when something is at `target` and `replacing` is
    ///   false; `storage` otherwise.
    static func moveIntoPlace(_ source: FilePath, to target: FilePath, replacing: Bool) throws(P2PError) {
        if replacing {
            guard rename(source.string, target.string) == 0 else {
                throw P2PError(code: .storage, "cannot move \(source) to \(target): \(Self.lastError())")
            }
            return
        }
        if link(source.string, target.string) == 0 {
            unlink(source.string)
            return
        }
        let linkError = errno
        if linkError == EEXIST {
            throw P2PError(code: .fileExists, "\(target) appeared while the download finished")
        }
        // File systems without hard links: look, then rename.
        guard faccessat(AT_FDCWD, target.string, F_OK, AT_SYMLINK_NOFOLLOW) != 0, errno == ENOENT else {
            throw P2PError(code: .fileExists, "\(target) appeared while the download finished")
        }
        guard rename(source.string, target.string) == 0 else {
            throw P2PError(code: .storage, "cannot move \(source) to \(target): \(Self.lastError())")
        }
    }

    private static func lastError() -> String {
        String(cString: strerror(errno))
    }
}
