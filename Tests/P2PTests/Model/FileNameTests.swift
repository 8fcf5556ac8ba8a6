import P2P
import Testing

@Suite("FileName")
struct FileNameTests {
    @Test(
        "unsafe names are refused",
        arguments: [
            "", ".", "..", "../x", "/etc/passwd", "a/../../b", "a/b", "a\\b", "x\u{0}y", "tab\there",
            "new\nline", "del\u{7F}", "bell\u{07}", "c1\u{85}control", String(repeating: "n", count: 256),
            "..hidden", "a..b",
        ]
    )
    func refusesUnsafeNames(_ name: String) {
        #expect(throws: P2PError.self) { try FileName(name) }
        #expect(FileName.problem(with: name) != nil)
    }

    @Test(
        "ordinary names are accepted",
        arguments: [
            "a", "big.iso", "with space.txt", "ümlaut-日本.bin", "profile-not.dots", "a-b", "x.partial.txt",
            String(repeating: "n", count: 255),
        ]
    )
    func acceptsOrdinaryNames(_ name: String) throws {
        #expect(try FileName(name).value == name)
    }

    @Test("the error says what is wrong and escapes control characters")
    func errorMessage() {
        do {
            _ = try FileName("x\u{1}y")
            Issue.record("accepted a control character")
        } catch {
            #expect(error.code == .badName)
            #expect(error.message.contains("control character"))
            #expect(error.message.contains("\\u{1}"))
        }
    }

    @Test(
        "names that show as something else, read as options, hide, or look like a partial are refused",
        arguments: [
            ("exe\u{202E}gnp.exe", "formatting"),  // right-to-left override: shows as "exe.png"
            ("a\u{200B}b", "formatting"),  // zero-width space
            ("a\u{2066}b", "formatting"),  // left-to-right isolate
            ("a\u{FEFF}b", "formatting"),  // zero-width no-break space
            ("a\u{2028}b", "line break"),
            ("-rf", "'-'"),
            (".bashrc", "hidden"),
            ("a.partial", ".partial"),
        ]
    )
    func refusesDeceptiveNames(_ name: String, _ reason: String) {
        let problem = FileName.problem(with: name)
        #expect(problem?.contains(reason) == true, "\(problem ?? "accepted")")
    }
}
