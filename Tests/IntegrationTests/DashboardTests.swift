import Foundation
import Testing

/// The dashboard at `/` in headless Chromium: a download started elsewhere (through the
/// API) appears in the page and reaches 100 %, read from the live DOM. Debian's `chromium`;
/// `.ci/run` installs it.
@Suite(
    "Dashboard in headless Chromium",
    .timeLimit(.minutes(3)),
    .enabled(if: HeadlessBrowser.executable != nil, "needs chromium (apt-get install chromium)")
)
struct DashboardTests {
    @Test("a download started through the API appears in the page and reaches 100 %; peers and chunk maps show")
    func downloadAppears() async throws {
        try #require(Curl.isAvailable, "curl is not installed")
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let key = "p2pk-dashboard-test-key-0123456789"
        let size = 6 << 20
        try TransferFixtures.share("shown.bin", size: size, seed: 9, peer: "seed", in: swarm)
        // Paced, so the page sees the download under way before it ends.
        let seed = try swarm.launch(
            ["serve", "--upload-rate", "2M", "--secret", key, "--name", "seed-box"],
            name: "seed"
        )
        _ = try await seed.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        let (_, base) = try await GatewayTests.launchGateway(name: "gw", in: swarm, extra: ["--secret", key])

        let browser = try await HeadlessBrowser.open("\(base)/#key=\(key)", in: swarm)
        let listed = try await browser.waitFor(
            "document.querySelector('#files .file .holder') && document.querySelectorAll('#peers tr.peer').length",
            timeout: .seconds(20)
        ) { $0 == "1" }
        #expect(listed.held, "the page lists the seed and its file: \(listed.last ?? "nothing")")
        let peerName = try await browser.evaluate("document.querySelector('#peers tr.peer td.name').textContent")
        #expect(peerName == "seed-box", "peers are shown by name")

        let started = try await Curl.request([
            "-X", "POST", "-H", "Authorization: Bearer \(key)", "--data", #"{"name":"shown.bin"}"#,
            "\(base)/api/transfers",
        ])
        #expect(started.status == 202, "\(started.text)")
        let row = "document.querySelector('#transfers tr.transfer')"
        let fetching = try await browser.waitFor("\(row) && \(row).dataset.state", timeout: .seconds(20)) {
            $0 == "fetching"
        }
        #expect(fetching.held, "the download shows while under way: \(fetching.last ?? "no row")")
        let finished = try await browser.waitFor(
            "\(row) && (\(row).dataset.state + ' ' + \(row).querySelector('.percent').textContent)",
            timeout: .seconds(60)
        ) { $0 == "finished 100%" }
        #expect(finished.held, "the download reaches 100 %: \(finished.last ?? "no row")")
        let name = try await browser.evaluate("\(row).cells[0].textContent")
        #expect(name == "shown.bin")
        await browser.close()
    }
}
