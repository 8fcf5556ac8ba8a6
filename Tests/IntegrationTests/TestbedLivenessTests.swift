import Foundation
import Testing

/// A peer moving data is alive whatever becomes of its announcements (SPEC §12): on the
/// namespace testbed, the seeder's broadcasts stop reaching the downloader mid-download,
/// as they do behind a saturated uplink. Needs root and iproute2.
@Suite(
    "Liveness across testbed hosts",
    .serialized,
    .timeLimit(.minutes(2)),
    .enabled(
        if: Testbed.isAvailable,
        "needs root and iproute2 to build the namespace testbed (scripts/testbed.sh check)"
    )
)
struct TestbedLivenessTests {
    @Test("announcements lost mid-download: the seeder is not expired and the download completes")
    func announcementsLost() async throws {
        try await Testbed.with(hosts: 2, rate: "20mbit") { testbed in
            // Three silent intervals are 0.9 s: the transfer, about 10 s, outlasts them many times.
            let swarm = try TestSwarm(announceInterval: 0.3)
            defer { swarm.shutdown() }
            let size = 24 << 20
            let data = try TransferFixtures.share("stream.bin", size: size, peer: "h1", in: swarm)
            let seeder = try testbed.launch(host: 1, ["serve"], in: swarm, name: "h1")
            _ = try await seeder.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
            let get = try testbed.launch(host: 2, ["get", "stream.bin", "--timeout", "90"], in: swarm, name: "h2")
            _ = try await get.waitForLine(in: .stderr, containing: "download started", timeout: .seconds(30))
            try await testbed.dropBroadcasts(host: 1)
            let lost = ContinuousClock.now
            let status = try await get.waitForExit(timeout: .seconds(90))
            try? await get.waitForOutputToEnd(timeout: .seconds(5))
            #expect(status == 0, "\(get.transcript())")
            // The download outlived the silence by far more than three intervals.
            #expect(ContinuousClock.now - lost > .seconds(3))
            let expired = get.lines(.stderr).filter { $0.text.contains("peer expired") }
            #expect(expired.isEmpty, "\(expired.map(\.text))")
            #expect(
                TransferFixtures.sha256(of: TransferFixtures.downloaded("stream.bin", peer: "h2", in: swarm))
                    == TransferFixtures.sha256(data)
            )
        }
    }
}
