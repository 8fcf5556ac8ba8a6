import P2PGateway
import Testing

@Suite("--http [ADDRESS:]PORT")
struct GatewayAddressTests {
    @Test(
        "addresses parse, and say whether only this host reaches them",
        arguments: [
            ("8080", "127.0.0.1", 8080, true),
            ("0", "127.0.0.1", 0, true),
            ("127.0.0.1:9000", "127.0.0.1", 9000, true),
            ("127.8.9.10:1", "127.8.9.10", 1, true),
            ("localhost:80", "127.0.0.1", 80, true),
            ("[::1]:8080", "::1", 8080, true),
            ("0.0.0.0:8080", "0.0.0.0", 8080, false),
            ("198.18.0.2:8080", "198.18.0.2", 8080, false),
            ("[::]:8080", "::", 8080, false),
        ]
    )
    func parses(text: String, host: String, port: Int, loopback: Bool) throws {
        let address = try GatewayAddress(parsing: text)
        #expect(address.host == host)
        #expect(address.port == port)
        #expect(address.isLoopback == loopback)
    }

    @Test("malformed values are refused", arguments: ["", "http", "65536", "-1", "1.2.3:80", "example.com:80", ":"])
    func refusesMalformed(text: String) {
        #expect(throws: GatewayAddress.Error.self) { try GatewayAddress(parsing: text) }
    }

    @Test("an address other hosts reach needs the network key; loopback does not")
    func keyRule() throws {
        let wide = try GatewayAddress(parsing: "0.0.0.0:8080")
        #expect(wide.refusal(hasNetworkKey: false)?.contains("--secret") == true)
        #expect(wide.refusal(hasNetworkKey: true) == nil)
        #expect(try GatewayAddress(parsing: "8080").refusal(hasNetworkKey: false) == nil)
    }

    @Test("IPv6 addresses are written back in brackets")
    func description() throws {
        #expect(try GatewayAddress(parsing: "[::1]:80").description == "[::1]:80")
        #expect(try GatewayAddress(parsing: "80").description == "127.0.0.1:80")
    }
}
