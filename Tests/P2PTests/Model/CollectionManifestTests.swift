import Crypto
import P2P
import Testing

@Suite("Collection manifests")
struct CollectionManifestTests {
    static func id(_ seed: UInt8) -> FileID { FileID(bytes: [UInt8](repeating: seed, count: 32))! }

    static func member(_ path: String, _ seed: UInt8 = 1, size: UInt64 = 10) throws -> CollectionManifest.Member {
        CollectionManifest.Member(path: try CollectionPath(path), fileID: Self.id(seed), size: size)
    }

    static func sample() throws -> CollectionManifest {
        try CollectionManifest(
            name: FileName("photos"),
            files: [try member("b.jpg", 2, size: 5), try member("2024/a.jpg", 1, size: 7), try member("a.jpg", 3)],
            emptyFolders: [try CollectionPath("empty"), try CollectionPath("2024/later")]
        )
    }

    @Test("entries are sorted into canonical order; the id is the SHA-256 of the encoding")
    func canonical() throws {
        let manifest = try Self.sample()
        #expect(manifest.files.map(\.path.value) == ["2024/a.jpg", "a.jpg", "b.jpg"])
        #expect(manifest.emptyFolders.map(\.value) == ["2024/later", "empty"])
        #expect(manifest.id.bytes == Array(SHA256.hash(data: manifest.encoded)))
        #expect(manifest.totalSize == 22)
        let shuffled = try CollectionManifest(
            name: FileName("photos"),
            files: manifest.files.reversed(),
            emptyFolders: manifest.emptyFolders.reversed()
        )
        #expect(shuffled.id == manifest.id)
    }

    @Test("decode gives back the manifest, with and without its id")
    func roundTrip() throws {
        let manifest = try Self.sample()
        #expect(try CollectionManifest.decode(manifest.encoded) == manifest)
        #expect(try CollectionManifest.decode(manifest.encoded, expectedID: manifest.id) == manifest)
        let empty = try CollectionManifest(name: FileName("nothing"), files: [], emptyFolders: [])
        #expect(try CollectionManifest.decode(empty.encoded) == empty)
    }

    @Test("the same file under two paths, and a change of any field, give another id")
    func distinctIDs() throws {
        let one = try CollectionManifest(name: FileName("f"), files: [try Self.member("a")], emptyFolders: [])
        let two = try CollectionManifest(
            name: FileName("f"),
            files: [try Self.member("a"), try Self.member("b")],
            emptyFolders: []
        )
        let renamed = try CollectionManifest(name: FileName("g"), files: [try Self.member("a")], emptyFolders: [])
        let resized = try CollectionManifest(
            name: FileName("f"),
            files: [try Self.member("a", size: 11)],
            emptyFolders: []
        )
        #expect(Set([one.id, two.id, renamed.id, resized.id]).count == 4)
    }

    static func refusal(_ build: () throws -> Void, _ reason: String) {
        #expect {
            try build()
        } throws: { error in
            guard let error = error as? P2PError else { return false }
            return error.code == .protocolViolation && error.message.contains(reason)
        }
    }

    @Test("a path listed twice is refused")
    func duplicates() throws {
        Self.refusal(
            {
                _ = try CollectionManifest(
                    name: FileName("f"),
                    files: [try Self.member("a"), try Self.member("a", 2)],
                    emptyFolders: []
                )
            },
            "'a' is listed twice"
        )
        Self.refusal(
            {
                _ = try CollectionManifest(
                    name: FileName("f"),
                    files: [],
                    emptyFolders: [try CollectionPath("e"), try CollectionPath("e")]
                )
            },
            "'e' is listed twice"
        )
    }

    @Test("a path that is both a file and a folder is refused")
    func fileAndFolder() throws {
        Self.refusal(
            {
                _ = try CollectionManifest(
                    name: FileName("f"),
                    files: [try Self.member("a"), try Self.member("a/b")],
                    emptyFolders: []
                )
            },
            "'a' is both a file and a folder"
        )
        Self.refusal(
            {
                _ = try CollectionManifest(
                    name: FileName("f"),
                    files: [try Self.member("a")],
                    emptyFolders: [try CollectionPath("a")]
                )
            },
            "'a' is both a file and a folder"
        )
    }

    @Test("a folder listed as empty that holds something is refused")
    func notEmpty() throws {
        Self.refusal(
            {
                _ = try CollectionManifest(
                    name: FileName("f"),
                    files: [try Self.member("d/x")],
                    emptyFolders: [try CollectionPath("d")]
                )
            },
            "folder 'd' is listed as empty but holds 'd/x'"
        )
    }

    @Test("too many entries, and sizes past 2^64, are refused")
    func bounds() throws {
        let many = try (0...CollectionManifest.maximumEntryCount).map { try CollectionPath("f\($0)") }
        Self.refusal(
            { _ = try CollectionManifest(name: FileName("f"), files: [], emptyFolders: many) },
            "more than \(CollectionManifest.maximumEntryCount)"
        )
        Self.refusal(
            {
                _ = try CollectionManifest(
                    name: FileName("f"),
                    files: [try Self.member("a", size: .max), try Self.member("b", size: 1)],
                    emptyFolders: []
                )
            },
            "past 2^64"
        )
    }

    // MARK: Hostile encodings

    /// Encodes entries as the wire does, in the order given, without any check.
    static func encode(
        name: String,
        files: [(String, UInt64)],
        folders: [String],
        counts: (UInt32, UInt32)? = nil
    )
        -> [UInt8]
    {
        var bytes = Array("P2PC".utf8) + [1, 0]
        func string(_ value: String) {
            let utf8 = Array(value.utf8)
            bytes += [UInt8(utf8.count >> 8), UInt8(utf8.count & 0xFF)] + utf8
        }
        func u32(_ value: UInt32) { bytes += withUnsafeBytes(of: value.bigEndian) { Array($0) } }
        string(name)
        u32(counts?.0 ?? UInt32(files.count))
        u32(counts?.1 ?? UInt32(folders.count))
        for (path, size) in files {
            string(path)
            bytes += [UInt8](repeating: 7, count: 32)
            bytes += withUnsafeBytes(of: size.bigEndian) { Array($0) }
        }
        for folder in folders { string(folder) }
        return bytes
    }

    @Test("the encoder used by the hostile cases agrees with the real one")
    func hostileEncoder() throws {
        let manifest = try CollectionManifest(
            name: FileName("f"),
            files: [CollectionManifest.Member(path: try CollectionPath("a/b"), fileID: Self.id(7), size: 3)],
            emptyFolders: [try CollectionPath("c")]
        )
        #expect(Self.encode(name: "f", files: [("a/b", 3)], folders: ["c"]) == manifest.encoded)
    }

    @Test(
        "a hostile collection manifest is refused whole, saying why",
        arguments: [
            (encode(name: "f", files: [("../escape", 1)], folders: []), P2PError.Code.badName, "'..'"),
            (encode(name: "f", files: [("/etc/passwd", 1)], folders: []), .badName, "absolute"),
            (encode(name: "f", files: [("a\u{0}b", 1)], folders: []), .badName, "NUL"),
            (
                encode(name: "f", files: [(String(repeating: "n", count: 256), 1)], folders: []), .badName,
                "longer than 255"
            ),
            (
                encode(name: "f", files: [((0..<250).map { _ in "abcd" }.joined(separator: "/"), 1)], folders: []),
                .badName, "longer than 1024"
            ),
            (encode(name: "f", files: [], folders: ["ok/../../x"]), .badName, "'..'"),
            (encode(name: "../f", files: [], folders: []), .badName, "'..'"),
            (encode(name: "f", files: [("a", 1), ("a", 1)], folders: []), .protocolViolation, "listed twice"),
            (
                encode(name: "f", files: [("a", 1), ("a/b", 1)], folders: []), .protocolViolation,
                "both a file and a folder"
            ),
            (encode(name: "f", files: [("a", 1)], folders: ["a"]), .protocolViolation, "both a file and a folder"),
            (encode(name: "f", files: [("b", 1), ("a", 1)], folders: []), .protocolViolation, "canonical order"),
            (encode(name: "f", files: [], folders: [], counts: (0xFFFF_FFFF, 0)), .protocolViolation, "more than"),
            (encode(name: "f", files: [], folders: [], counts: (50_000, 0)), .protocolViolation, "do not fit"),
            (
                encode(name: "f", files: [("abcdefgh", 1)], folders: []).dropLast(1).map { $0 }, .protocolViolation,
                "truncated"
            ),
            (encode(name: "f", files: [("a", 1)], folders: []) + [0], .protocolViolation, "after the last entry"),
            (Array("P2PX".utf8) + [1, 0], .protocolViolation, "bad magic"),
            (Array("P2PC".utf8) + [2, 0], .protocolViolation, "unsupported version"),
            (
                [UInt8](repeating: 0, count: CollectionManifest.maximumEncodedLength + 1), .protocolViolation,
                "more than"
            ),
        ]
    )
    func hostile(bytes: [UInt8], code: P2PError.Code, reason: String) {
        #expect {
            _ = try CollectionManifest.decode(bytes)
        } throws: { error in
            guard let error = error as? P2PError else { return false }
            return error.code == code && error.message.contains(reason)
        }
    }

    @Test("a manifest that does not hash to the id asked for is refused as corrupt")
    func wrongID() throws {
        let manifest = try Self.sample()
        #expect {
            _ = try CollectionManifest.decode(manifest.encoded, expectedID: Self.id(9))
        } throws: { error in (error as? P2PError)?.code == .corrupt }
    }

    @Test("an entry whose path is not UTF-8 is refused")
    func notUTF8() {
        var bytes = Self.encode(name: "f", files: [("ab", 1)], folders: [])
        // The path's bytes follow the header, the name, the counts and its length.
        let path = Self.encode(name: "f", files: [], folders: []).count + 2
        bytes[path] = 0xC3
        bytes[path + 1] = 0xFF
        #expect {
            _ = try CollectionManifest.decode(bytes)
        } throws: { error in (error as? P2PError)?.message.contains("not UTF-8") == true }
    }
}
