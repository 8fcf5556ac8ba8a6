import Foundation
import NIOCore
import Testing
import _NIOFileSystem

@testable import P2P

/// The library's entry point for folders, `Downloader.fetchCollection`, against a real
/// `SwarmResponder` on loopback (no processes): the tree arrives, a second call finds it
/// here, and a tree with something in the way is refused before it is fetched.
@Suite("Downloader.fetchCollection over loopback")
struct CollectionDownloadTests {
    /// Runs `body` with a downloader whose only peer serves `origin`'s share folder.
    @discardableResult
    static func withSeeder<Result: Sendable>(
        sharing origin: StorageFixture,
        into sink: StorageFixture,
        _ body: @Sendable (Downloader, ChunkStore) async throws -> Result
    ) async throws -> Result {
        let logger = StorageFixture.logger
        let seederStore = try await ChunkStore.open(configuration: origin.configuration(), logger: logger)
        let sinkStore = try await ChunkStore.open(configuration: sink.configuration(), logger: logger)
        let table = PeerTable()
        let responder = SwarmResponder(store: seederStore, statistics: TransferStatistics(), logger: logger)
        let server = try await TransferServer.loopback(responder, logger: logger)
        try table.recordLoopbackPeer(PeerID(high: 0, low: 1), transferPort: server.port)
        let downloader = Downloader(store: sinkStore, table: table, settings: TransferSettings(logger: logger))
        let result: Result
        do {
            result = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                defer { group.cancelAll() }
                return try await body(downloader, sinkStore)
            }
        } catch {
            await sinkStore.close()
            await seederStore.close()
            throw error
        }
        await sinkStore.close()
        await seederStore.close()
        return result
    }

    static func files(under root: URL) -> [String: Data] {
        var files: [String: Data] = [:]
        for path in FileManager.default.subpaths(atPath: root.path) ?? [] {
            let url = root.appendingPathComponent(path)
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue,
                let data = try? Data(contentsOf: url)
            else { continue }
            files[path] = data
        }
        return files
    }

    @Test("a folder arrives whole by name; fetched again, it is found here; the tree being built is gone")
    func byName() async throws {
        let origin = try StorageFixture()
        let sink = try StorageFixture()
        defer { for fixture in [origin, sink] { fixture.remove() } }
        let album = try CollectionSharingTests.album(in: origin)
        try await Self.withSeeder(sharing: origin, into: sink) { downloader, store in
            let result = try await downloader.fetchCollection(name: "album", idPrefix: nil, timeout: .seconds(30))
            #expect(result.filesFetched == 3 && result.filesAlreadyHeld == 0)
            #expect(result.manifest.emptyFolders.map(\.value) == ["empty"])
            let target = sink.downloads.appendingPathComponent("album")
            #expect(result.path == FilePath(target.path))
            var expected = Self.files(under: album)
            for skipped in [".hidden", "-rf", "2024/link.txt"] { expected[skipped] = nil }
            #expect(Self.files(under: target) == expected)
            #expect(FileManager.default.fileExists(atPath: target.appendingPathComponent("empty").path))
            // The fetched folder is shared from here, under the same collection id.
            #expect(await store.collectionPath(of: result.manifest.id) == result.path)
            let again = try await downloader.fetchCollection(
                name: nil,
                idPrefix: result.manifest.id.description,
                timeout: .seconds(30)
            )
            #expect(again.filesFetched == 0 && again.filesAlreadyHeld == 3)
            let partials = sink.downloads.appendingPathComponent(ChunkStore.partialFolderName)
            #expect((try? FileManager.default.contentsOfDirectory(atPath: partials.path)) ?? [] == [])
        }
    }

    @Test("something else under the folder's name refuses the fetch before anything is fetched")
    func somethingInTheWay() async throws {
        let origin = try StorageFixture()
        let sink = try StorageFixture()
        defer { for fixture in [origin, sink] { fixture.remove() } }
        _ = try CollectionSharingTests.album(in: origin)
        try FileManager.default.createDirectory(at: sink.downloads, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: sink.downloads.appendingPathComponent("album"))
        try await Self.withSeeder(sharing: origin, into: sink) { downloader, _ in
            await #expect {
                _ = try await downloader.fetchCollection(name: "album", idPrefix: nil, timeout: .seconds(30))
            } throws: { error in
                guard let error = error as? P2PError else { return false }
                return error.code == .fileExists && error.message.contains("move it away")
            }
        }
        let partials = sink.downloads.appendingPathComponent(ChunkStore.partialFolderName)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: partials.path)) ?? [] == [])
        #expect(try Data(contentsOf: sink.downloads.appendingPathComponent("album")) == Data("mine".utf8))
    }

    @Test("a name that only a file has is not a folder")
    func fileIsNotAFolder() async throws {
        let origin = try StorageFixture()
        let sink = try StorageFixture()
        defer { for fixture in [origin, sink] { fixture.remove() } }
        _ = try CollectionSharingTests.album(in: origin)
        try await Self.withSeeder(sharing: origin, into: sink) { downloader, _ in
            await #expect {
                _ = try await downloader.fetchCollection(name: "top.txt", idPrefix: nil, timeout: .seconds(2))
            } throws: { error in (error as? P2PError)?.code == .notFound }
        }
    }
}
