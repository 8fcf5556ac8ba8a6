import Foundation
import NIOCore
import P2P
import Testing
import _NIOFileSystem

@Suite("ChunkStore and ChunkFile")
struct ChunkStoreTests {
    /// The 32 bytes before a chunk's readable bytes, where a chunk read for serving keeps
    /// its file id (`nil` if there is no room).
    static func bytesInFront(of chunk: ByteBuffer) -> [UInt8]? {
        guard chunk.readerIndex >= FileID.byteCount else { return nil }
        var whole = chunk
        whole.moveReaderIndex(to: chunk.readerIndex - FileID.byteCount)
        return whole.readBytes(length: FileID.byteCount)
    }

    @Test("shared files are hashed into manifests and served chunk by chunk", arguments: [0, 1, 262_144, 262_145])
    func sharesFiles(size: Int) async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let data = try fixture.share("file.bin", size: size)
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        let inventory = await store.inventory()
        #expect(inventory.count == 1)
        let entry = try #require(inventory.first)
        #expect(entry.name.value == "file.bin")
        #expect(entry.size == UInt64(size))
        #expect(entry.bitmap.isComplete)
        let manifest = try #require(await store.manifest(for: entry.id))
        var joined: [UInt8] = []
        for index in 0..<manifest.chunkCount {
            let chunk = try #require(try await store.readChunk(entry.id, index: index))
            #expect(manifest.verify(chunk, chunk: index))
            // Read with room for the file id in front, so that answering needs no copy.
            #expect(Self.bytesInFront(of: chunk) == entry.id.bytes)
            // In a block of exactly the frame payload's size, not rounded up to a power of two.
            #expect(chunk.storageCapacity == FileID.byteCount + chunk.readableBytes)
            joined += Array(chunk.readableBytesView)
        }
        #expect(joined == data)
        #expect(try await store.readChunk(entry.id, index: manifest.chunkCount) == nil)
        await store.close()
    }

    @Test("a shared file cut short after it was hashed: reading its lost chunk is a storage error")
    func sharedFileTruncated() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        try fixture.share("cut.bin", size: 3 * 262_144)
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        let id = try #require(await store.inventory().first?.id)
        let handle = try FileHandle(forWritingTo: fixture.share.appendingPathComponent("cut.bin"))
        try handle.truncate(atOffset: 2 * 262_144 + 100)
        try handle.close()
        #expect(try await store.readChunk(id, index: 1)?.readableBytes == 262_144)
        let error = await #expect(throws: P2PError.self) { try await store.readChunk(id, index: 2) }
        #expect(error?.code == .storage)
        // The message names the file and says where it ends.
        #expect(error?.description.contains("cut.bin") == true, "\(String(describing: error))")
        #expect(error?.description.contains("ends 100 bytes into") == true, "\(String(describing: error))")
        await store.close()
    }

    @Test("unsafe, hidden and non-regular entries in the share folder are not offered")
    func skipsUnsafe() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        try fixture.share("ok.txt", size: 10)
        try fixture.share(".hidden", size: 10)
        try FileManager.default.createDirectory(
            at: fixture.share.appendingPathComponent("sub"),
            withIntermediateDirectories: true
        )
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        #expect(await store.inventory().map(\.name.value) == ["ok.txt"])
        await store.close()
    }

    @Test("files added later are offered after a rescan; removed ones are withdrawn")
    func rescan() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        #expect(await store.inventory().isEmpty)
        try fixture.share("late.bin", size: 1000)
        await store.rescan()
        #expect(await store.inventory().map(\.name.value) == ["late.bin"])
        try FileManager.default.removeItem(at: fixture.share.appendingPathComponent("late.bin"))
        await store.rescan()
        #expect(await store.inventory().isEmpty)
        await store.close()
    }

    @Test("a missing share folder that was named is refused with a clear error")
    func missingShareFolder() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        try FileManager.default.removeItem(at: fixture.share)
        do {
            _ = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
            Issue.record("opened a store with a missing share folder")
        } catch let error as P2PError {
            #expect(error.code == .badFolder)
            #expect(error.message.contains("does not exist"))
        }
    }

    @Test("manifests are cached on disk: a second open reads them back")
    func manifestCache() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        try fixture.share("cached.bin", size: 600_000)
        let first = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        let id = try #require(await first.inventory().first?.id)
        await first.close()
        let cached = try FileManager.default.contentsOfDirectory(
            atPath: fixture.state.appendingPathComponent("manifests").path
        )
        #expect(cached.count == 1)
        let second = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        #expect(await second.inventory().first?.id == id)
        await second.close()
    }

    @Test("a download is written as ID.partial, resumes from its record, and becomes NAME when complete")
    func downloadLifecycle() async throws {
        let source = try StorageFixture()
        let sink = try StorageFixture()
        defer {
            source.remove()
            sink.remove()
        }
        let data = try source.share("movie.bin", size: 1_000_000)
        let origin = try await ChunkStore.open(configuration: source.configuration(), logger: StorageFixture.logger)
        let id = try #require(await origin.inventory().first?.id)
        let manifest = try #require(await origin.manifest(for: id))

        let store = try await ChunkStore.open(configuration: sink.configuration(), logger: StorageFixture.logger)
        let partial = try await store.beginDownload(manifest)
        try await partial.write(try #require(try await origin.readChunk(id, index: 1)), chunk: 1)
        try await partial.write(try #require(try await origin.readChunk(id, index: 3)), chunk: 3)
        let partialPath = await store.partialPath(of: id).string
        #expect(partialPath.hasSuffix("downloads/.p2p-partials/\(id).partial"))
        #expect(FileManager.default.fileExists(atPath: partialPath))
        // A downloading peer offers what it has verified, read as a complete file's are.
        #expect(await store.inventory().first?.bitmap.indices == [1, 3])
        let served = try #require(try await store.readChunk(id, index: 3))
        #expect(served == (try await origin.readChunk(id, index: 3)))
        #expect(Self.bytesInFront(of: served) == id.bytes)
        #expect(try await store.readChunk(id, index: 2) == nil)
        await store.suspendDownload(id)
        await store.close()

        // Resume in a new store, as after a restart.
        let resumed = try await ChunkStore.open(configuration: sink.configuration(), logger: StorageFixture.logger)
        let again = try await resumed.beginDownload(manifest)
        #expect(await again.bitmap.indices == [1, 3])
        for index in [0, 2] {
            try await again.write(try #require(try await origin.readChunk(id, index: index)), chunk: index)
        }
        let path = try await resumed.finishDownload(id)
        #expect(path.string.hasSuffix("downloads/movie.bin"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path.string)) == Data(data))
        #expect(!FileManager.default.fileExists(atPath: partialPath))
        #expect(await resumed.hasComplete(id))
        await resumed.close()
        await origin.close()
    }

    @Test("chunks read while the download finishes are served, from the .partial or the finished file")
    func readsDuringFinish() async throws {
        let source = try StorageFixture()
        let sink = try StorageFixture()
        defer {
            source.remove()
            sink.remove()
        }
        let (origin, manifest, chunks, _) = try await source.origin(sharing: "crowd.bin", size: 24 * 262_144)
        let id = manifest.id
        let store = try await ChunkStore.open(configuration: sink.configuration(), logger: StorageFixture.logger)
        let partial = try await store.beginDownload(manifest)
        for index in chunks.indices { try await partial.write(chunks[index], chunk: index) }
        // Peers of a crowd ask this peer for its chunks up to the moment its download
        // finishes and after: no request may fail, or find the chunk gone, on the way.
        let served = await withTaskGroup(of: Int.self) { group in
            for reader in 0..<4 {
                group.addTask {
                    var count = 0
                    for pass in 0..<3 {
                        for index in chunks.indices {
                            let chunk = (index + reader * 7 + pass) % chunks.count
                            // Recorded, not thrown: a throw would leave the stores open.
                            do {
                                let bytes = try await store.readChunk(id, index: chunk)
                                #expect(bytes == chunks[chunk], "chunk \(chunk), reader \(reader), pass \(pass)")
                                count += 1
                            } catch {
                                Issue.record("chunk \(chunk), reader \(reader), pass \(pass): \(error)")
                            }
                        }
                    }
                    return count
                }
            }
            group.addTask {
                do { _ = try await store.finishDownload(id) } catch { Issue.record("finishing: \(error)") }
                return 0
            }
            return await group.reduce(0, +)
        }
        #expect(served == 4 * 3 * chunks.count)
        #expect(await store.hasComplete(id))
        await store.close()
        await origin.close()
    }

    @Test("chunks written at once, each twice, are all stored and recorded once, in turn")
    func concurrentWrites() async throws {
        let source = try StorageFixture()
        let sink = try StorageFixture()
        defer {
            source.remove()
            sink.remove()
        }
        // 40 chunks of 256 KiB and a short last one.
        let (origin, manifest, chunks, data) = try await source.origin(sharing: "set.bin", size: 40 * 262_144 + 1_000)
        let id = manifest.id

        let store = try await ChunkStore.open(configuration: sink.configuration(), logger: StorageFixture.logger)
        let partial = try await store.beginDownload(manifest)
        let fresh = try await withThrowingTaskGroup(of: Bool.self) { group in
            // In order, then in reverse: the second writer of each chunk finds it held.
            for order in [Array(chunks.indices), chunks.indices.reversed()] {
                for index in order {
                    group.addTask { try await partial.write(chunks[index], chunk: index) }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(fresh == manifest.chunkCount)
        #expect(await partial.bitmap.setCount == manifest.chunkCount)
        // The record names each chunk once: reopened, every chunk is held (and re-verified).
        await store.suspendDownload(id)
        await store.close()
        let reopened = try await ChunkStore.open(configuration: sink.configuration(), logger: StorageFixture.logger)
        let again = try await reopened.beginDownload(manifest)
        #expect(await again.bitmap.setCount == manifest.chunkCount)
        let path = try await reopened.finishDownload(id)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path.string)) == Data(data))
        await reopened.close()
        await origin.close()
    }

    @Test("a recorded chunk whose data was damaged on disk is not trusted on resume")
    func damagedPartial() async throws {
        let source = try StorageFixture()
        let sink = try StorageFixture()
        defer {
            source.remove()
            sink.remove()
        }
        try source.share("data.bin", size: 600_000)
        let origin = try await ChunkStore.open(configuration: source.configuration(), logger: StorageFixture.logger)
        let id = try #require(await origin.inventory().first?.id)
        let manifest = try #require(await origin.manifest(for: id))
        let store = try await ChunkStore.open(configuration: sink.configuration(), logger: StorageFixture.logger)
        let partial = try await store.beginDownload(manifest)
        for index in 0..<manifest.chunkCount {
            try await partial.write(try #require(try await origin.readChunk(id, index: index)), chunk: index)
        }
        await store.suspendDownload(id)
        await store.close()
        let partialURL = URL(fileURLWithPath: await store.partialPath(of: id).string)
        let handle = try FileHandle(forWritingTo: partialURL)
        try handle.seek(toOffset: 10)
        handle.write(Data([1, 2, 3, 4]))
        try handle.close()
        let reopened = try await ChunkStore.open(configuration: sink.configuration(), logger: StorageFixture.logger)
        let file = try await reopened.beginDownload(manifest)
        #expect(await file.bitmap.indices == Array(1..<manifest.chunkCount))
        await reopened.close()
        await origin.close()
    }

    @Test("pushed chunks are verified, cached within the limit, and served")
    func pushedChunks() async throws {
        let source = try StorageFixture()
        let sink = try StorageFixture()
        defer {
            source.remove()
            sink.remove()
        }
        try source.share("spread.bin", size: 700_000)
        let origin = try await ChunkStore.open(configuration: source.configuration(), logger: StorageFixture.logger)
        let id = try #require(await origin.inventory().first?.id)
        let manifest = try #require(await origin.manifest(for: id))
        let limit = Int64(manifest.chunkSize * 2)
        let store = try await ChunkStore.open(
            configuration: sink.configuration(cacheLimit: limit),
            logger: StorageFixture.logger
        )
        let chunk0 = try #require(try await origin.readChunk(id, index: 0))
        var bad = chunk0
        bad.setInteger(UInt8(0x55), at: bad.readerIndex + 5)
        #expect(await store.storePushed(bad, chunk: 0, of: manifest) == .corrupt)
        #expect(await store.storePushed(chunk0, chunk: 1, of: manifest) == .corrupt)
        #expect(await store.storePushed(chunk0, chunk: 0, of: manifest) == .stored)
        #expect(await store.storePushed(chunk0, chunk: 0, of: manifest) == .duplicate)
        #expect(
            await store.storePushed(try #require(try await origin.readChunk(id, index: 1)), chunk: 1, of: manifest)
                == .stored
        )
        #expect(
            await store.storePushed(try #require(try await origin.readChunk(id, index: 2)), chunk: 2, of: manifest)
                == .cacheFull
        )
        #expect(await store.cacheUsage == limit)
        #expect(await store.inventory().first?.bitmap.indices == [0, 1])
        #expect(try await store.readChunk(id, index: 0) == chunk0)
        await store.close()
        // The cache survives a restart.
        let reopened = try await ChunkStore.open(
            configuration: sink.configuration(cacheLimit: limit),
            logger: StorageFixture.logger
        )
        #expect(await reopened.inventory().first?.bitmap.indices == [0, 1])
        await reopened.close()
        await origin.close()
    }

    @Test("manifests remembered from peers are bounded in bytes: a flood of big ones is forgotten")
    func rememberedManifestsAreBounded() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        // 1 MiB manifests: a file of 32,768 chunks, each with its 32-byte hash.
        func big(_ seed: UInt8) throws -> Manifest {
            let chunks = 32_768
            var hashes = [UInt8](repeating: seed, count: chunks * 32)
            hashes[0] = seed &+ 1
            return try Manifest(
                name: FileName("big\(seed).bin"),
                size: UInt64(chunks) * 262_144,
                chunkSize: 262_144,
                chunkHashes: hashes
            )
        }
        let first = try big(0)
        await store.remember(first)
        #expect(await store.manifest(for: first.id) != nil)
        for seed in 1...70 { await store.remember(try big(UInt8(seed))) }
        // 71 MiB pushed: past the 64 MiB bound, the oldest are gone.
        #expect(await store.manifest(for: first.id) == nil)
        let last = try big(70)
        #expect(await store.manifest(for: last.id) != nil)
        await store.close()
    }
}
