import Foundation
import NIOCore
import P2P
import Testing
import _NIOFileSystem

/// What the store refuses to do whatever is planted in its folders: write through a
/// symbolic link, serve a file outside the share, hand back a file whose bytes changed, or
/// mix two files that share a name.
@Suite("ChunkStore safety")
struct ChunkStoreSafetyTests {
    /// Writes every chunk of `origin` into a download of `manifest` in `store`.
    private static func fill(
        _ store: ChunkStore,
        with chunks: [ByteBuffer],
        of manifest: Manifest
    ) async throws -> ChunkFile {
        let file = try await store.beginDownload(manifest)
        for (index, chunk) in chunks.enumerated() { try await file.write(chunk, chunk: index) }
        return file
    }

    @Test("a symbolic link planted at the partial file is refused, and its target is untouched")
    func linkAtPartialIsRefused() async throws {
        try await StorageFixture.withOriginAndSink(sharing: "victim.bin", size: 600_000) { origin, store, sink in
            let outside = sink.root.appendingPathComponent("outside.txt")
            try Data("precious".utf8).write(to: outside)
            let partial = await store.partialPath(of: origin.manifest.id)
            try FileManager.default.createDirectory(
                atPath: partial.removingLastComponent().string,
                withIntermediateDirectories: true
            )
            try FileManager.default.createSymbolicLink(atPath: partial.string, withDestinationPath: outside.path)

            await #expect {
                _ = try await store.beginDownload(origin.manifest)
            } throws: { error in
                (error as? P2PError)?.message.contains("symbolic link") == true
            }
            #expect(try String(contentsOf: outside, encoding: .utf8) == "precious")
        }
    }

    @Test("a symbolic link planted at a download record is refused, and its target is untouched")
    func linkAtRecordIsRefused() async throws {
        try await StorageFixture.withOriginAndSink(sharing: "victim.bin", size: 600_000) { origin, store, sink in
            let outside = sink.root.appendingPathComponent("outside.txt")
            try Data("precious".utf8).write(to: outside)
            let record = sink.state.appendingPathComponent("partials/\(origin.manifest.id).record")
            try FileManager.default.createSymbolicLink(atPath: record.path, withDestinationPath: outside.path)

            await #expect(throws: P2PError.self) { _ = try await store.beginDownload(origin.manifest) }
            #expect(try String(contentsOf: outside, encoding: .utf8) == "precious")
        }
    }

    @Test("a state folder replaced by a symbolic link is refused at start")
    func linkedStateFolderIsRefused() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let elsewhere = fixture.root.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: fixture.state, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: fixture.state.appendingPathComponent("partials").path,
            withDestinationPath: elsewhere.path
        )
        await #expect {
            _ = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        } throws: { error in
            (error as? P2PError)?.code == .badFolder && "\(error)".contains("symbolic link")
        }
    }

    @Test("symbolic links in the share folder are not offered, wherever they point")
    func linksInShareAreNotServed() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        try fixture.share("real.bin", size: 1000)
        let outside = fixture.root.appendingPathComponent("secret.txt")
        try Data("secret".utf8).write(to: outside)
        try FileManager.default.createSymbolicLink(
            atPath: fixture.share.appendingPathComponent("secret-link").path,
            withDestinationPath: outside.path
        )
        try FileManager.default.createSymbolicLink(
            atPath: fixture.share.appendingPathComponent("inside-link").path,
            withDestinationPath: fixture.share.appendingPathComponent("real.bin").path
        )
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        #expect(await store.inventory().map(\.name.value) == ["real.bin"])
        await store.close()
    }

    @Test("two downloads of different files with one name keep separate partials; the second cannot replace the first")
    func sameNameDownloadsDoNotMix() async throws {
        let first = try StorageFixture()
        let second = try StorageFixture()
        let sink = try StorageFixture()
        defer {
            first.remove()
            second.remove()
            sink.remove()
        }
        let a = try await first.origin(sharing: "report.pdf", size: 700_000, seed: 1)
        let b = try await second.origin(sharing: "report.pdf", size: 700_000, seed: 2)
        let store = try await ChunkStore.open(configuration: sink.configuration(), logger: StorageFixture.logger)
        // Interleaved, as two `get`s at once would write them.
        let fileA = try await store.beginDownload(a.manifest)
        let fileB = try await store.beginDownload(b.manifest)
        for index in 0..<a.manifest.chunkCount {
            try await fileA.write(a.chunks[index], chunk: index)
            try await fileB.write(b.chunks[index], chunk: index)
        }
        #expect(await store.partialPath(of: a.manifest.id) != store.partialPath(of: b.manifest.id))
        let path = try await store.finishDownload(a.manifest.id)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path.string)) == Data(a.data))
        await #expect {
            _ = try await store.finishDownload(b.manifest.id)
        } throws: { error in
            let error = error as? P2PError
            return error?.code == .fileExists && error?.message.contains(a.manifest.id.short) == true
        }
        // The first file is untouched and B's download is kept whole for later.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path.string)) == Data(a.data))
        let keptB = await store.partialPath(of: b.manifest.id).string
        #expect(try Data(contentsOf: URL(fileURLWithPath: keptB)) == Data(b.data))
        await store.close()
        await a.store.close()
        await b.store.close()
    }

    @Test("replacingExisting replaces a different file of the name, and only when asked")
    func replacingExisting() async throws {
        let source = try StorageFixture()
        let sink = try StorageFixture()
        defer {
            source.remove()
            sink.remove()
        }
        let origin = try await source.origin(sharing: "f.bin", size: 300_000)
        try FileManager.default.createDirectory(at: sink.downloads, withIntermediateDirectories: true)
        try Data("an older f.bin".utf8).write(to: sink.downloads.appendingPathComponent("f.bin"))
        let store = try await ChunkStore.open(configuration: sink.configuration(), logger: StorageFixture.logger)
        #expect(await store.conflict(for: origin.manifest)?.contains("another file") == true)
        _ = try await Self.fill(store, with: origin.chunks, of: origin.manifest)
        await #expect(throws: P2PError.self) { _ = try await store.finishDownload(origin.manifest.id) }
        #expect(try Data(contentsOf: sink.downloads.appendingPathComponent("f.bin")) == Data("an older f.bin".utf8))

        _ = try await store.beginDownload(origin.manifest)
        let path = try await store.finishDownload(origin.manifest.id, replacingExisting: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path.string)) == Data(origin.data))
        #expect(await store.inventory().map(\.id) == [origin.manifest.id])
        await store.close()
        await origin.store.close()
    }

    @Test("a chunk that changed on disk after it was verified is caught before the rename and fetched again")
    func changedChunkIsCaught() async throws {
        try await StorageFixture.withOriginAndSink(sharing: "data.bin", size: 1_000_000) { origin, store, sink in
            let file = try await Self.fill(store, with: origin.chunks, of: origin.manifest)
            // Another program writes into the partial file.
            let handle = try FileHandle(
                forWritingTo: URL(fileURLWithPath: await store.partialPath(of: origin.manifest.id).string)
            )
            // One chunk in each half of the file, which are read back in parallel.
            for chunk in [0, 2] {
                try handle.seek(toOffset: UInt64(chunk * origin.manifest.chunkSize + 5))
                handle.write(Data([0xDE, 0xAD]))
            }
            try handle.close()

            await #expect {
                _ = try await store.finishDownload(origin.manifest.id)
            } throws: { error in
                (error as? P2PError)?.code == .corrupt
            }
            #expect(await file.bitmap.missing == [0, 2])
            #expect(!FileManager.default.fileExists(atPath: sink.downloads.appendingPathComponent("data.bin").path))
            try await file.write(origin.chunks[0], chunk: 0)
            try await file.write(origin.chunks[2], chunk: 2)
            let path = try await store.finishDownload(origin.manifest.id)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path.string)) == Data(origin.data))
        }
    }

    @Test("a partial file cut short after its chunks were verified is caught, and the lost chunks fetched again")
    func truncatedPartialIsCaught() async throws {
        try await StorageFixture.withOriginAndSink(sharing: "data.bin", size: 1_000_000) { origin, store, sink in
            let file = try await Self.fill(store, with: origin.chunks, of: origin.manifest)
            let partial = await store.partialPath(of: origin.manifest.id).string
            #expect(truncate(partial, off_t(origin.manifest.chunkSize + 10)) == 0)
            await #expect(throws: P2PError.self) { _ = try await store.finishDownload(origin.manifest.id) }
            #expect(await file.bitmap.indices == [0])
        }
    }

    @Test("a name of 255 bytes, the longest accepted, downloads into place")
    func longestNameDownloads() async throws {
        let name = String(repeating: "n", count: 251) + ".bin"
        try await StorageFixture.withOriginAndSink(sharing: name, size: 300_000) { origin, store, sink in
            _ = try await Self.fill(store, with: origin.chunks, of: origin.manifest)
            let path = try await store.finishDownload(origin.manifest.id)
            #expect(path.lastComponent?.string == name)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path.string)) == Data(origin.data))
        }
    }
}
