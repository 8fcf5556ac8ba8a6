import P2P
import Testing

@Suite("Collection paths")
struct CollectionPathTests {
    @Test("a nested path keeps its components and ancestors")
    func nested() throws {
        let path = try CollectionPath("docs/deep/c.txt")
        #expect(path.components.map(\.value) == ["docs", "deep", "c.txt"])
        #expect(path.name.value == "c.txt")
        #expect(path.ancestors == ["docs", "docs/deep"])
        #expect(try CollectionPath("top.txt").ancestors.isEmpty)
    }

    @Test(
        "unsafe paths are refused as bad names, saying why",
        arguments: [
            ("", "empty"),
            ("../etc/passwd", "'..'"),
            ("a/../b", "'..'"),
            ("..", "'..'"),
            ("/etc/passwd", "absolute"),
            ("a\u{0}b", "NUL"),
            ("a//b", "an empty component"),
            ("a/", "an empty component"),
            ("./a", "'.' is not a file"),
            ("a\\b", "path separator"),
            (String(repeating: "x", count: 256), "longer than 255 bytes"),
            ("ok/" + String(repeating: "y", count: 256), "longer than 255 bytes"),
            ((0..<300).map { _ in "abcd" }.joined(separator: "/"), "longer than 1024 bytes"),
            ((0..<33).map { _ in "d" }.joined(separator: "/"), "deeper than 32 folders"),
            ("a/.hidden", "hidden"),
            ("a/b\u{202E}gpj.exe", "invisible"),
            ("a/file.partial", ".partial"),
        ]
    )
    func refused(path: String, reason: String) {
        #expect {
            _ = try CollectionPath(path)
        } throws: { error in
            guard let error = error as? P2PError else { return false }
            return error.code == .badName && error.message.contains(reason)
        }
    }

    @Test("canonical order is the byte order of the UTF-8 paths")
    func order() throws {
        let paths = try ["b", "a/z", "a-b", "a", "é", "Z"].map { try CollectionPath($0) }
        #expect(paths.sorted().map(\.value) == ["Z", "a", "a-b", "a/z", "b", "é"])
    }
}
