import Foundation
import P2P
import Testing
import _NIOFileSystem

/// `ChunkStore.share(file:)`: a file named one by one (`p2p send PATH`) is offered besides
/// the share folder's, and nothing but a regular file is.
@Suite("ChunkStore named files")
struct ChunkStoreNamedFileTests {
    @Test("a file outside the share folder is hashed, offered whole, and kept on the next rescan")
    func sharesNamedFile() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let data = StorageFixture.bytes(300_000, seed: 3)
        let outside = fixture.root.appendingPathComponent("build.tar")
        try Data(data).write(to: outside)
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        #expect(await store.inventory().isEmpty)
        let manifest = try await store.share(file: FilePath(outside.path))
        #expect(manifest.name.value == "build.tar" && manifest.size == 300_000)
        #expect(await store.path(of: manifest.id) == FilePath(outside.path))
        await store.rescan()
        let entries = await store.inventory()
        #expect(entries.map(\.id) == [manifest.id])
        #expect(entries.first?.bitmap.isComplete == true)
        let chunk = try #require(try await store.readChunk(manifest.id, index: 1))
        #expect(manifest.verify(chunk, chunk: 1))
        await store.close()
    }

    @Test("a missing path, a folder and a symbolic link are refused, saying which")
    func refusesOthers() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let target = fixture.root.appendingPathComponent("secret.txt")
        try Data("not to be sent".utf8).write(to: target)
        let link = fixture.root.appendingPathComponent("link.txt")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        for (path, words) in [
            (fixture.root.appendingPathComponent("absent.bin").path, "does not exist"),
            (fixture.root.path, "is not a regular file"),
            (link.path, "is not a regular file"),
        ] {
            do {
                _ = try await store.share(file: FilePath(path))
                Issue.record("\(path) was shared")
            } catch {
                #expect(error.message.contains(words), "\(error)")
            }
        }
        #expect(await store.inventory().isEmpty)
        await store.close()
    }
}
