import Foundation
import Testing

/// Transfers across hosts of the namespace testbed with rate-limited links, so that
/// "mid-download" is a real moment. Needs root and iproute2.
@Suite(
    "Transfer across rate-limited testbed hosts",
    .serialized,
    .timeLimit(.minutes(2)),
    .enabled(
        if: Testbed.isAvailable,
        "needs root and iproute2 to build the namespace testbed (scripts/testbed.sh check)"
    )
)
struct TestbedTransferTests {
    @Test("two seeders at 40 Mbit/s each; one is killed mid-download; the file arrives byte-identical from both")
    func seederKilledAcrossHosts() async throws {
        try await Testbed.with(hosts: 3, rate: "40mbit") { testbed in
            let swarm = try TestSwarm()
            defer { swarm.shutdown() }
            let size = 24 << 20
            let data = try TransferFixtures.share("image.iso", size: size, peer: "h1", in: swarm)
            try TransferFixtures.share("image.iso", size: size, peer: "h2", in: swarm)
            let doomed = try testbed.launch(host: 1, ["serve"], in: swarm, name: "h1")
            let survivor = try testbed.launch(host: 2, ["serve"], in: swarm, name: "h2")
            // Both serving before the download looks for holders (see `seederKilled`).
            for seeder in [doomed, survivor] {
                _ = try await seeder.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
            }
            let get = try testbed.launch(host: 3, ["get", "image.iso", "--json"], in: swarm, name: "h3")
            let partials = swarm.directory.appendingPathComponent("h3/.p2p/partials")
            let started = await TransferTests.waitUntil(timeout: .seconds(20)) {
                (try? FileManager.default.contentsOfDirectory(atPath: partials.path).isEmpty == false) ?? false
            }
            #expect(started, "\(get.transcript())")
            // About a quarter of the way: 80 Mbit/s moves 24 MiB in about 2.5 s.
            try await Task.sleep(for: .milliseconds(600))
            doomed.kill()
            let status = try await get.waitForExit(timeout: .seconds(60))
            try? await get.waitForOutputToEnd(timeout: .seconds(5))
            #expect(status == 0, "\(get.transcript())")
            let summary = try #require(get.lines(.stdout).compactMap { TransferFixtures.parse($0.text) }.first)
            #expect(summary.bytesFromPeers.count == 2, "\(summary.bytesFromPeers)")
            let fromEach = summary.bytesFromPeers.values.sorted()
            // The killed seeder sent part of the file, the survivor the rest.
            #expect(fromEach[0] > 0 && fromEach[0] < size / 2, "\(fromEach)")
            #expect(fromEach.reduce(0, +) == size)
            #expect(
                TransferFixtures.sha256(of: TransferFixtures.downloaded("image.iso", peer: "h3", in: swarm))
                    == TransferFixtures.sha256(data)
            )
        }
    }
}
