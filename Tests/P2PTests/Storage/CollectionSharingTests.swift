import Foundation
import NIOCore
import Testing
import _NIOFileSystem

@testable import P2P

@Suite("Shared folders as collections")
struct CollectionSharingTests {
    /// A share folder with a folder `album` holding nested files, an empty folder, a link
    /// to a file outside the share folder, a hidden file and a name that is not accepted.
    static func album(in fixture: StorageFixture) throws -> URL {
        let album = fixture.share.appendingPathComponent("album")
        let manager = FileManager.default
        try manager.createDirectory(at: album.appendingPathComponent("2024/summer"), withIntermediateDirectories: true)
        try manager.createDirectory(at: album.appendingPathComponent("empty"), withIntermediateDirectories: true)
        try Data("one".utf8).write(to: album.appendingPathComponent("a.txt"))
        try Data("two".utf8).write(to: album.appendingPathComponent("2024/b.txt"))
        try Data("one".utf8).write(to: album.appendingPathComponent("2024/summer/a.txt"))
        try Data("hidden".utf8).write(to: album.appendingPathComponent(".hidden"))
        try Data("dash".utf8).write(to: album.appendingPathComponent("-rf"))
        let outside = fixture.root.appendingPathComponent("secret.txt")
        try Data("secret".utf8).write(to: outside)
        try manager.createSymbolicLink(at: album.appendingPathComponent("2024/link.txt"), withDestinationURL: outside)
        try manager.createSymbolicLink(
            at: album.appendingPathComponent("linked-folder"),
            withDestinationURL: fixture.root
        )
        try Data("top".utf8).write(to: fixture.share.appendingPathComponent("top.txt"))
        return album
    }

    @Test("a subfolder of the share folder is one collection: its files by path, its empty folders, no link followed")
    func shared() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        _ = try Self.album(in: fixture)
        try await Self.withStore(fixture) { store in try await Self.checkShared(store, fixture) }
    }

    /// Runs `body` with a store of the fixture's folders, closed after whatever happens.
    static func withStore(_ fixture: StorageFixture, _ body: (ChunkStore) async throws -> Void) async throws {
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        do {
            try await body(store)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    static func checkShared(_ store: ChunkStore, _ fixture: StorageFixture) async throws {
        let list = await store.collectionList()
        let entry = try #require(list.first)
        #expect(list.count == 1)
        #expect(entry.name.value == "album" && entry.fileCount == 3 && entry.totalSize == 9)
        let manifest = try #require(await store.collectionManifest(for: entry.id))
        #expect(manifest.files.map(\.path.value) == ["2024/b.txt", "2024/summer/a.txt", "a.txt"])
        #expect(manifest.emptyFolders.map(\.value) == ["empty"])
        #expect(try CollectionManifest.decode(manifest.encoded, expectedID: entry.id) == manifest)
        // The same bytes under the same last component are the same file, at both paths.
        #expect(manifest.files[1].fileID == manifest.files[2].fileID)
        // Each member is an ordinary file, offered and readable by its id; the top-level
        // file is still offered on its own.
        let inventory = await store.inventory()
        for member in manifest.files {
            let held = try #require(inventory.first { $0.id == member.fileID })
            #expect(held.name == member.path.name && held.bitmap.isComplete)
            let chunk = try #require(try await store.readChunk(member.fileID, index: 0))
            #expect(UInt64(chunk.readableBytes) == member.size)
        }
        #expect(inventory.contains { $0.name.value == "top.txt" })
        #expect(
            await store.collectionPath(of: entry.id) == FilePath(fixture.share.appendingPathComponent("album").path)
        )
        // One file's entry alone, as a download's worker asks for it.
        let one = try #require(await store.inventoryEntry(for: manifest.files[0].fileID))
        #expect(one.id == manifest.files[0].fileID && one.bitmap.isComplete)
        #expect(await store.inventoryEntry(for: entry.id) == nil)
    }

    @Test("a file added to a shared folder changes the collection id at the next rescan")
    func rescan() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let album = try Self.album(in: fixture)
        try await Self.withStore(fixture) { store in
            let before = try #require(await store.collectionList().first)
            try Data("three".utf8).write(to: album.appendingPathComponent("empty/c.txt"))
            await store.rescan()
            let after = try #require(await store.collectionList().first)
            #expect(after.id != before.id && after.fileCount == 4)
            #expect(await store.collectionManifest(for: before.id) == nil)
            let manifest = try #require(await store.collectionManifest(for: after.id))
            #expect(manifest.emptyFolders.isEmpty)
        }
    }

    @Test("a finished tree is moved to its name only while nothing is there")
    func moveIntoPlace() throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let tree = fixture.root.appendingPathComponent("tree")
        try FileManager.default.createDirectory(
            at: tree.appendingPathComponent("sub"),
            withIntermediateDirectories: true
        )
        let taken = fixture.root.appendingPathComponent("taken")
        try Data("x".utf8).write(to: taken)
        #expect {
            try Downloader.moveTreeIntoPlace(FilePath(tree.path), to: FilePath(taken.path))
        } throws: { error in (error as? P2PError)?.code == .fileExists }
        #expect(FileManager.default.fileExists(atPath: tree.appendingPathComponent("sub").path))
        let free = fixture.root.appendingPathComponent("free")
        try Downloader.moveTreeIntoPlace(FilePath(tree.path), to: FilePath(free.path))
        #expect(FileManager.default.fileExists(atPath: free.appendingPathComponent("sub").path))
        #expect(!FileManager.default.fileExists(atPath: tree.path))
    }
}

@Suite("Open read handles")
struct ReadHandleBoundTests {
    @Test("serving a folder of many files keeps a bounded number of them open, and every file stays readable")
    func bounded() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let folder = fixture.share.appendingPathComponent("many")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let count = ChunkStore.maximumOpenReadHandles + 72
        for index in 0..<count {
            try Data("file \(index)".utf8).write(to: folder.appendingPathComponent("f\(index).txt"))
        }
        try await CollectionSharingTests.withStore(fixture) { store in
            let entry = try #require(await store.collectionList().first)
            let manifest = try #require(await store.collectionManifest(for: entry.id))
            #expect(manifest.files.count == count)
            for pass in 0..<2 {
                for member in manifest.files {
                    let chunk = try #require(try await store.readChunk(member.fileID, index: 0), "pass \(pass)")
                    #expect(String(buffer: chunk) == "file \(member.path.name.value.dropFirst().dropLast(4))")
                    #expect(await store.openReadHandleCount <= ChunkStore.maximumOpenReadHandles)
                }
            }
        }
    }
}
