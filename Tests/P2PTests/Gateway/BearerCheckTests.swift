import P2PGateway
import Testing

@Suite("Bearer token check")
struct BearerCheckTests {
    @Test("without a key every request passes")
    func noKey() {
        let check = BearerCheck(secret: nil)
        #expect(!check.isRequired)
        #expect(check.admits(nil))
        #expect(check.admits("Bearer anything"))
    }

    @Test(
        "with a key only the key in a Bearer header passes",
        arguments: [
            ("Bearer p2pk-secret", true),
            ("bearer p2pk-secret", true),
            ("Bearer  p2pk-secret", true),
            ("Bearer p2pk-secreT", false),
            ("Bearer p2pk-secret ", false),
            ("Bearer p2pk-secre", false),
            ("Basic p2pk-secret", false),
            ("p2pk-secret", false),
            ("Bearer ", false),
            ("", false),
        ]
    )
    func key(header: String, admitted: Bool) {
        let check = BearerCheck(secret: "p2pk-secret")
        #expect(check.isRequired)
        #expect(check.admits(header) == admitted)
    }

    @Test("a request without the header is refused when a key is required")
    func missingHeader() {
        #expect(!BearerCheck(secret: "k").admits(nil))
    }
}
