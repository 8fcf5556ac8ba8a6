import Foundation
import Testing

/// The HTTP gateway on a testbed host's own address, which takes a network key: ranges
/// over the bridge compared byte for byte, and aria2c with four connections against a
/// gateway whose peer does not hold the file. Needs root and iproute2.
@Suite(
    "HTTP gateway across testbed hosts",
    .serialized,
    .timeLimit(.minutes(2)),
    .enabled(
        if: Testbed.isAvailable,
        "needs root and iproute2 to build the namespace testbed (scripts/testbed.sh check)"
    )
)
struct TestbedGatewayTests {
    static let key = "p2pk-testbed-gateway-key-0123456789"

    @Test("curl ranges and aria2c with four connections through a gateway whose peer does not hold the file")
    func gatewayAcrossHosts() async throws {
        try #require(Curl.isAvailable, "curl is not installed")
        let aria2c = try #require(
            ["/usr/bin/aria2c", "/usr/local/bin/aria2c"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "aria2c is not installed"
        )
        try await Testbed.with(hosts: 3, rate: "200mbit") { testbed in
            let swarm = try TestSwarm()
            defer { swarm.shutdown() }
            let size = 12 << 20
            let data = try TransferFixtures.share("remote.iso", size: size, seed: 3, peer: "h1", in: swarm)
            let seed = try testbed.launch(host: 1, ["serve", "--secret", Self.key], in: swarm, name: "h1")
            _ = try await seed.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
            let address = "\(testbed.address(host: 2)):8080"
            let gateway = try testbed.launch(
                host: 2,
                ["serve", "--secret", Self.key, "--http", address],
                in: swarm,
                name: "h2"
            )
            _ = try await gateway.waitForLine(in: .stderr, containing: "http gateway listening", timeout: .seconds(30))
            let base = "http://\(address)"
            let client = testbed.namespace(host: 3)
            let bearer = "Authorization: Bearer \(Self.key)"

            let refused = try await Curl.request(["\(base)/files/remote.iso"], namespace: client)
            #expect(refused.status == 401)

            let range = try await Curl.request(
                ["-H", bearer, "--range", "5000000-5300000", "\(base)/files/remote.iso"],
                namespace: client
            )
            #expect(range.status == 206, "\(gateway.transcript())")
            #expect(range.body == Data(data[5_000_000...5_300_000]))

            let output = swarm.directory.appendingPathComponent("aria2c", isDirectory: true)
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            let ip = try #require(Testbed.ipCommand)
            let fetch = try swarm.launch(
                executable: ip,
                arguments: [
                    "netns", "exec", client, aria2c, "--max-connection-per-server=4", "--split=4",
                    "--min-split-size=1M", "--header=\(bearer)", "--dir=\(output.path)", "--out=remote.iso",
                    "--max-tries=2", "--timeout=30", "--quiet=true", "--allow-overwrite=true",
                    "--auto-file-renaming=false", "--no-conf=true", "\(base)/files/remote.iso",
                ],
                name: "aria2c"
            )
            let status = try await fetch.waitForExit(timeout: .seconds(60))
            #expect(status == 0, "\(fetch.transcript())\n\(gateway.transcript())")
            #expect(
                TransferFixtures.sha256(of: output.appendingPathComponent("remote.iso"))
                    == TransferFixtures.sha256(data)
            )
        }
    }
}
