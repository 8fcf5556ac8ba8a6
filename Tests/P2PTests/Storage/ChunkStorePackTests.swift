import Foundation
import NIOCore
import Testing
import _NIOFileSystem

@testable import P2P

@Suite("Packs of a folder's small files")
struct ChunkStorePackTests {
    /// The album of `CollectionSharingTests` (three files, two distinct: "two" at
    /// 2024/b.txt, "one" at 2024/summer/a.txt and a.txt), its manifest and a store.
    static func withAlbum(
        _ body: (ChunkStore, CollectionManifest, StorageFixture) async throws -> Void
    ) async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        _ = try CollectionSharingTests.album(in: fixture)
        try await CollectionSharingTests.withStore(fixture) { store in
            let entry = try #require(await store.collectionList().first)
            let manifest = try #require(await store.collectionManifest(for: entry.id))
            try await body(store, manifest, fixture)
        }
    }

    @Test("a pack is served by its id like any file, and never listed")
    func served() async throws {
        try await Self.withAlbum { store, manifest, _ in
            let id = try #require(try await store.makePack(of: manifest))
            let chunk = try #require(try await store.readChunk(id, index: 0))
            #expect(String(buffer: chunk) == "twoone")
            let packManifest = try #require(await store.manifest(for: id))
            #expect(packManifest.name == CollectionPack.fileName && packManifest.size == 6)
            #expect(await store.inventoryEntry(for: id)?.bitmap.isComplete == true)
            #expect(await !store.inventory().contains { $0.id == id })
            // A rescan (a file shared, a download finished) keeps serving it.
            await store.rescan()
            #expect(try await store.readChunk(id, index: 0) != nil)
            #expect(await !store.inventory().contains { $0.id == id })
        }
    }

    @Test("a pack cut into a tree gives every path its file; paths already placed are left alone")
    func cut() async throws {
        try await Self.withAlbum { store, manifest, fixture in
            let id = try #require(try await store.makePack(of: manifest))
            let layout = try #require(CollectionPack(manifest))
            let tree = fixture.root.appendingPathComponent("tree")
            try FileManager.default.createDirectory(
                at: tree.appendingPathComponent("2024/summer"),
                withIntermediateDirectories: true
            )
            let placed: Set<CollectionPath> = [try CollectionPath("a.txt")]
            let cut = try await store.cutPack(id, layout, into: FilePath(tree.path), skipping: placed)
            #expect(
                Set(cut.map(\.path)) == [try CollectionPath("2024/b.txt"), try CollectionPath("2024/summer/a.txt")]
            )
            // Each with the manifest of its member: the store need not hash it again.
            for file in cut {
                #expect(manifest.files.first { $0.path == file.path }?.fileID == file.manifest.id)
            }
            #expect(try String(contentsOf: tree.appendingPathComponent("2024/b.txt"), encoding: .utf8) == "two")
            #expect(try String(contentsOf: tree.appendingPathComponent("2024/summer/a.txt"), encoding: .utf8) == "one")
            #expect(!FileManager.default.fileExists(atPath: tree.appendingPathComponent("a.txt").path))
        }
    }

    @Test("a file of the pack that is not the collection's is not written, to be fetched on its own")
    func mismatch() async throws {
        try await Self.withAlbum { store, manifest, fixture in
            let id = try #require(try await store.makePack(of: manifest))
            let layout = try #require(CollectionPack(manifest))
            // The pack on disk changes under the store: "two" becomes "TWO".
            let path = try #require(await store.path(of: id))
            try Data("TWOone".utf8).write(to: URL(fileURLWithPath: path.string))
            let tree = fixture.root.appendingPathComponent("tree")
            try FileManager.default.createDirectory(
                at: tree.appendingPathComponent("2024/summer"),
                withIntermediateDirectories: true
            )
            let cut = try await store.cutPack(id, layout, into: FilePath(tree.path), skipping: [])
            #expect(Set(cut.map(\.path)) == [try CollectionPath("2024/summer/a.txt"), try CollectionPath("a.txt")])
            #expect(!FileManager.default.fileExists(atPath: tree.appendingPathComponent("2024/b.txt").path))
        }
    }

    @Test(
        "a peer's packs go when its store closes; an old one a crashed run left goes when a store opens, a young one stays"
    )
    func lifetime() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        _ = try CollectionSharingTests.album(in: fixture)
        var madePath: FilePath? = nil
        try await CollectionSharingTests.withStore(fixture) { store in
            let entry = try #require(await store.collectionList().first)
            let manifest = try #require(await store.collectionManifest(for: entry.id))
            let id = try #require(try await store.makePack(of: manifest))
            madePath = await store.path(of: id)
            #expect(FileManager.default.fileExists(atPath: try #require(madePath).string))
        }
        #expect(!FileManager.default.fileExists(atPath: try #require(madePath).string))
        // Packs of runs that did not close: one written 20 minutes ago, one a peer that
        // shares this downloads folder wrote just now.
        let partials = fixture.downloads.appendingPathComponent(".p2p-partials")
        let old = partials.appendingPathComponent(String(repeating: "a", count: 64) + ".pack")
        let young = partials.appendingPathComponent(String(repeating: "b", count: 64) + ".pack")
        try Data("old".utf8).write(to: old)
        try Data("young".utf8).write(to: young)
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -1200)],
            ofItemAtPath: old.path
        )
        try await CollectionSharingTests.withStore(fixture) { _ in
            #expect(!FileManager.default.fileExists(atPath: old.path))
            #expect(FileManager.default.fileExists(atPath: young.path))
        }
    }
}
