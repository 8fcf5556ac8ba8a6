import Foundation
import Logging
import NIOCore
import P2P
import Testing
import _NIOFileSystem

/// A temporary folder layout for a peer's storage, removed by `remove()`.
struct StorageFixture {
    let root: URL
    var share: URL { self.root.appendingPathComponent("shared") }
    var downloads: URL { self.root.appendingPathComponent("downloads") }
    var state: URL { self.root.appendingPathComponent("state") }

    init() throws {
        self.root = FileManager.default.temporaryDirectory.appendingPathComponent("p2p-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.share, withIntermediateDirectories: true)
    }

    func configuration(cacheLimit: Int64 = StorageConfiguration.defaultCacheLimit) -> StorageConfiguration {
        StorageConfiguration(
            shareDirectory: FilePath(self.share.path),
            downloadsDirectory: FilePath(self.downloads.path),
            stateDirectory: FilePath(self.state.path),
            cacheLimit: cacheLimit
        )
    }

    /// Writes a shared file of deterministic pseudo-random bytes.
    @discardableResult
    func share(_ name: String, size: Int, seed: UInt64 = 7) throws -> [UInt8] {
        let bytes = Self.bytes(size, seed: seed)
        try Data(bytes).write(to: self.share.appendingPathComponent(name))
        return bytes
    }

    /// A store sharing one file of `size` bytes from this fixture, with the file's manifest,
    /// every chunk read from it and its bytes: the source of a download or of pushes in a
    /// test. The caller closes the store.
    func origin(
        sharing name: String,
        size: Int,
        seed: UInt64 = 7
    ) async throws -> (store: ChunkStore, manifest: Manifest, chunks: [ByteBuffer], data: [UInt8]) {
        let data = try self.share(name, size: size, seed: seed)
        let store = try await ChunkStore.open(configuration: self.configuration(), logger: Self.logger)
        let id = try #require(await store.inventory().first?.id)
        let manifest = try #require(await store.manifest(for: id))
        var chunks: [ByteBuffer] = []
        for index in 0..<manifest.chunkCount {
            chunks.append(try #require(try await store.readChunk(id, index: index)))
        }
        return (store, manifest, chunks, data)
    }

    /// Runs `body` with a store sharing one file of `size` bytes (the origin, with its
    /// manifest and chunks) and an empty store to download it into, with the latter's
    /// folders; both are closed and removed after.
    static func withOriginAndSink(
        sharing name: String,
        size: Int,
        _ body: (
            _ origin: (store: ChunkStore, manifest: Manifest, chunks: [ByteBuffer], data: [UInt8]),
            _ store: ChunkStore,
            _ sink: StorageFixture
        ) async throws -> Void
    ) async throws {
        let source = try StorageFixture()
        let sink = try StorageFixture()
        defer {
            source.remove()
            sink.remove()
        }
        let origin = try await source.origin(sharing: name, size: size)
        let store = try await ChunkStore.open(configuration: sink.configuration(), logger: StorageFixture.logger)
        do {
            try await body(origin, store, sink)
        } catch {
            await store.close()
            await origin.store.close()
            throw error
        }
        await store.close()
        await origin.store.close()
    }

    static func bytes(_ size: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var bytes = [UInt8](repeating: 0, count: size)
        for index in 0..<size {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            bytes[index] = UInt8(truncatingIfNeeded: state)
        }
        return bytes
    }

    func remove() {
        try? FileManager.default.removeItem(at: self.root)
    }

    static let logger = Logger(label: "p2p-test")
}
