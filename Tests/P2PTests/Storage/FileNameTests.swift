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
            "a", "big.iso", "with space.txt", "ümlaut-日本.bin", ".profile-not-dots", String(repeating: "n", count: 255),
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
}
