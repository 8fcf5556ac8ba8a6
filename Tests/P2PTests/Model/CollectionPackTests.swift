import P2P
import Testing

@Suite("Collection packs")
struct CollectionPackTests {
    static func member(_ path: String, _ seed: UInt8, size: UInt64) throws -> CollectionManifest.Member {
        try CollectionManifestTests.member(path, seed, size: size)
    }

    @Test(
        "the small files, each once, end to end in canonical order; empty and large files, and paths that lie about a file, travel on their own"
    )
    func layout() throws {
        let limit = CollectionPack.memberSizeLimit
        let manifest = try CollectionManifest(
            name: FileName("build"),
            files: [
                try Self.member("z.txt", 1, size: 10),
                try Self.member("big.iso", 2, size: limit),
                try Self.member("empty", 3, size: 0),
                try Self.member("a/z.txt", 1, size: 10),
                try Self.member("b/z.txt", 1, size: 11),
                try Self.member("c/y.txt", 1, size: 10),
                try Self.member("a/b.txt", 4, size: limit - 1),
                try Self.member("m.txt", 5, size: 3),
            ],
            emptyFolders: []
        )
        let pack = try #require(CollectionPack(manifest))
        #expect(
            pack.members.map(\.fileID) == [
                CollectionManifestTests.id(4), CollectionManifestTests.id(1), CollectionManifestTests.id(5),
            ]
        )
        #expect(pack.members.map(\.offset) == [0, limit - 1, limit + 9])
        // The file at a/z.txt is also at z.txt; b/z.txt and c/y.txt claim its id with
        // another size or name, so they are fetched on their own.
        #expect(pack.members.map { $0.paths.map(\.value) } == [["a/b.txt"], ["a/z.txt", "z.txt"], ["m.txt"]])
        #expect(pack.members.map(\.name.value) == ["b.txt", "z.txt", "m.txt"])
        #expect(pack.size == limit - 1 + 10 + 3)
        #expect(pack.paths.map(\.value).sorted() == ["a/b.txt", "a/z.txt", "m.txt", "z.txt"])
    }

    @Test("no pack for fewer than two small files")
    func tooFew() throws {
        let one = try CollectionManifest(
            name: FileName("one"),
            files: [
                try Self.member("a", 1, size: 5), try Self.member("b", 1, size: 5),
                try Self.member("big", 2, size: CollectionPack.memberSizeLimit),
            ],
            emptyFolders: []
        )
        #expect(CollectionPack(one) == nil)
        let none = try CollectionManifest(name: FileName("none"), files: [], emptyFolders: [])
        #expect(CollectionPack(none) == nil)
    }
}
