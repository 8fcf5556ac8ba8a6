import Crypto
import NIOCore
import _NIOFileSystem

/// Computes manifests of local files, and keeps them on disk so that a restart does not
/// hash again what did not change.
///
/// A cached manifest is keyed by the file's path, size and modification time: a file
/// that changes in any of them is hashed again.
public actor ManifestCache {
    private let directory: FilePath
    private var memory: [String: (size: Int64, modified: Int64, manifest: Manifest)] = [:]

    /// A cache in `directory` (created if missing).
    /// - Parameter directory: where cached manifests are stored.
    public init(directory: FilePath) {
        self.directory = directory
    }

    /// The manifest of the file at `path`, from the cache or by hashing it.
    /// - Parameters:
    ///   - path: the file.
    ///   - name: the name it is shared under.
    ///   - size: its size now.
    ///   - modified: its modification time now, in nanoseconds.
    /// - Returns: the manifest.
    /// - Throws: `P2PError` (`storage`) if the file cannot be read.
    public func manifest(of path: FilePath, name: FileName, size: Int64, modified: Int64) async throws -> Manifest {
        let key = path.string
        if let hit = self.memory[key], hit.size == size, hit.modified == modified, hit.manifest.name == name {
            return hit.manifest
        }
        let cacheFile = self.directory.appending(Self.cacheKey(path: key, size: size, modified: modified))
        if let stored = try? await ByteBuffer(contentsOf: cacheFile, maximumSizeAllowed: .mebibytes(20)),
            let manifest = try? Manifest.decode(Array(stored.readableBytesView)),
            manifest.name == name, manifest.size == UInt64(size)
        {
            self.memory[key] = (size, modified, manifest)
            return manifest
        }
        let manifest = try await Self.hash(path: path, name: name)
        guard manifest.size == UInt64(size) else {
            throw P2PError(code: .storage, "\(path) changed while it was being hashed")
        }
        self.memory[key] = (size, modified, manifest)
        do {
            try await FileSystem.shared.createDirectory(
                at: self.directory,
                withIntermediateDirectories: true,
                permissions: nil
            )
            try await ByteBuffer(bytes: manifest.encoded).write(
                toFileAt: cacheFile,
                options: .newFile(replaceExisting: true)
            )
        } catch {
            // The cache only saves time; a peer that cannot write it still works.
        }
        return manifest
    }

    /// Hashes a file chunk by chunk, in bounded memory.
    /// - Parameters:
    ///   - path: the file.
    ///   - name: the name it is shared under.
    /// - Returns: its manifest.
    /// - Throws: `P2PError` (`storage`) if the file cannot be read.
    public static func hash(path: FilePath, name: FileName) async throws -> Manifest {
        do {
            return try await FileSystem.shared.withFileHandle(forReadingAt: path) { handle in
                let size = try await handle.info().size
                let chunkSize = ChunkSizing.chunkSize(forFileSize: UInt64(size))
                var hashes: [UInt8] = []
                var total: Int64 = 0
                for try await chunk in handle.readChunks(in: 0..<size, chunkLength: .bytes(Int64(chunkSize))) {
                    let digest = chunk.withUnsafeReadableBytes { SHA256.hash(data: $0) }
                    hashes.append(contentsOf: digest)
                    total += Int64(chunk.readableBytes)
                }
                if size == 0 {
                    hashes.append(contentsOf: SHA256.hash(data: [UInt8]()))
                }
                return try Manifest(name: name, size: UInt64(total), chunkSize: chunkSize, chunkHashes: hashes)
            }
        } catch let error as P2PError {
            throw error
        } catch {
            throw P2PError(code: .storage, "cannot read \(path): \(error)")
        }
    }

    /// The manifest of bytes held in memory, as `hash(path:name:)` makes a file's.
    /// - Parameters:
    ///   - bytes: the file's bytes.
    ///   - name: the name it is shared under.
    /// - Returns: its manifest.
    public static func hash(bytes: UnsafeRawBufferPointer, name: FileName) throws(P2PError) -> Manifest {
        let chunkSize = ChunkSizing.chunkSize(forFileSize: UInt64(bytes.count))
        var hashes: [UInt8] = []
        var start = 0
        repeat {
            let end = min(start + chunkSize, bytes.count)
            hashes.append(contentsOf: SHA256.hash(data: UnsafeRawBufferPointer(rebasing: bytes[start..<end])))
            start = end
        } while start < bytes.count
        return try Manifest(name: name, size: UInt64(bytes.count), chunkSize: chunkSize, chunkHashes: hashes)
    }

    /// Takes a manifest made elsewhere for the file at `path` (the bytes it was made from
    /// were just written there), so that the next look at the file does not hash it again.
    /// Kept in memory only: a restart hashes the file once more.
    /// - Parameters:
    ///   - manifest: the file's manifest.
    ///   - path: the file.
    ///   - size: its size now.
    ///   - modified: its modification time now, in nanoseconds.
    public func remember(_ manifest: Manifest, of path: FilePath, size: Int64, modified: Int64) {
        self.memory[path.string] = (size, modified, manifest)
    }

    private static func cacheKey(path: String, size: Int64, modified: Int64) -> String {
        let digest = SHA256.hash(data: Array("\(path)\u{0}\(size)\u{0}\(modified)".utf8))
        return digest.map { String(format: $0) }.joined()
    }
}

extension String {
    /// Two lower-case hex digits of a byte.
    fileprivate init(format byte: UInt8) {
        let digits = String(byte, radix: 16)
        self = byte < 16 ? "0" + digits : digits
    }
}
