import P2P
import Testing

@Suite("What a name means: a file or a folder")
struct SwarmItemTests {
    static let fileID = FileID(bytes: [0xAA] + [UInt8](repeating: 1, count: 31))!
    static let folderID = FileID(bytes: [0xBB] + [UInt8](repeating: 2, count: 31))!
    static let peer = PeerID(high: 3, low: 3)

    static func file(_ name: String, id: FileID = fileID) throws -> SwarmFile {
        SwarmFile(id: id, name: try FileName(name), size: 5, chunkCount: 1, holders: [:], availableChunks: 1)
    }

    static func folders(_ name: String, id: FileID = folderID) throws -> [SwarmCollection] {
        SwarmCollection.gather([
            (peer, [CollectionEntry(id: id, name: try FileName(name), totalSize: 9, memberIDs: [fileID])])
        ])
    }

    @Test("a name only a folder has means the folder; only a file has, the file")
    func byName() throws {
        let item = try SwarmItem.resolve(
            name: "photos",
            idPrefix: nil,
            files: [try Self.file("a")],
            collections: try Self.folders("photos")
        )
        guard case .collection(let folder) = item else {
            Issue.record("resolved to \(item)")
            return
        }
        #expect(folder.id == Self.folderID && folder.holders == [Self.peer] && folder.fileCount == 1)
        let file = try SwarmItem.resolve(
            name: "a",
            idPrefix: nil,
            files: [try Self.file("a")],
            collections: try Self.folders("photos")
        )
        guard case .file(let found) = file else {
            Issue.record("resolved to \(file)")
            return
        }
        #expect(found.id == Self.fileID)
    }

    @Test("an id prefix picks a folder, or one of a file and a folder of the same name")
    func byID() throws {
        let item = try SwarmItem.resolve(
            name: nil,
            idPrefix: "BB02",
            files: [try Self.file("x")],
            collections: try Self.folders("x")
        )
        guard case .collection = item else {
            Issue.record("resolved to \(item)")
            return
        }
        let file = try SwarmItem.resolve(
            name: "x",
            idPrefix: "aa",
            files: [try Self.file("x")],
            collections: try Self.folders("x")
        )
        guard case .file = file else {
            Issue.record("resolved to \(file)")
            return
        }
    }

    @Test("a file and a folder of one name are ambiguous; nothing of the name is not found")
    func refusals() throws {
        #expect {
            _ = try SwarmItem.resolve(
                name: "x",
                idPrefix: nil,
                files: [try Self.file("x")],
                collections: try Self.folders("x")
            )
        } throws: { error in
            guard let error = error as? P2PError else { return false }
            return error.code == .ambiguous && error.message.contains("folder bb0202020202")
                && error.message.contains("--id")
        }
        #expect {
            _ = try SwarmItem.resolve(
                name: "y",
                idPrefix: nil,
                files: [try Self.file("x")],
                collections: try Self.folders("x")
            )
        } throws: { error in (error as? P2PError)?.code == .notFound }
    }
}
