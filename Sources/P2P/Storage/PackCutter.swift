import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Cuts a pack into a folder's tree (`ChunkStore.cutPack`) with plain system calls, as
/// one blocking job: a thousand small files cost a thousand opens and writes, not a
/// thousand trips through the file system's thread pool each.
enum PackCutter {
    /// The blocking half of `cutPack`: plain system calls, one file at a time.
    static func cut(
        _ packPath: FilePath,
        id: FileID,
        _ pack: CollectionPack,
        into tree: FilePath,
        skipping placed: Set<CollectionPath>
    ) throws(P2PError) -> [ChunkStore.CutFile] {
        let source = open(packPath.string, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard source >= 0 else { throw Self.systemError("cannot open the pack", packPath) }
        defer { close(source) }
        var files: [ChunkStore.CutFile] = []
        var buffer = [UInt8](repeating: 0, count: Int(CollectionPack.memberSizeLimit))
        for member in pack.members where member.paths.contains(where: { !placed.contains($0) }) {
            let length = Int(member.size)
            let read = buffer.withUnsafeMutableBytes {
                Self.readFully(source, into: $0, length, at: off_t(member.offset))
            }
            guard read == length else {
                throw P2PError(code: .storage, "the pack \(id.short) is shorter than its manifest")
            }
            // A pack whose chunks all verified can still hold a file other than the
            // collection's (its maker read a file that changed): such a file is left to be
            // fetched on its own.
            let manifest = buffer.withUnsafeBytes {
                try? ManifestCache.hash(bytes: UnsafeRawBufferPointer(rebasing: $0[0..<length]), name: member.name)
            }
            guard let manifest, manifest.id == member.fileID else { continue }
            for path in member.paths where !placed.contains(path) {
                let target = path.components.reduce(tree) { $0.appending($1.value) }
                // Created here, never through a link, never over anything.
                let file = open(target.string, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                guard file >= 0 else { throw Self.systemError("cannot create", target) }
                defer { close(file) }
                let written = buffer.withUnsafeBytes {
                    Self.writeFully(file, UnsafeRawBufferPointer(rebasing: $0[0..<length]))
                }
                guard written == length else {
                    let error = Self.systemError("cannot write", target)
                    unlink(target.string)
                    throw error
                }
                files.append(ChunkStore.CutFile(path: path, manifest: manifest))
            }
        }
        return files
    }

    /// Reads `length` bytes at `offset`, or fewer at the end of the file.
    private static func readFully(
        _ fd: Int32,
        into buffer: UnsafeMutableRawBufferPointer,
        _ length: Int,
        at offset: off_t
    ) -> Int {
        var done = 0
        while done < length {
            let got = pread(fd, buffer.baseAddress! + done, length - done, offset + off_t(done))
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            done += got
        }
        return done
    }

    /// Writes all of `bytes`, or as much as the file system takes before an error.
    private static func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
        var done = 0
        while done < bytes.count {
            let put = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if put < 0 && errno == EINTR { continue }
            guard put > 0 else { break }
            done += put
        }
        return done
    }

    /// A storage error naming the path and what the system said.
    private static func systemError(_ what: String, _ path: FilePath) -> P2PError {
        P2PError(code: .storage, "\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
