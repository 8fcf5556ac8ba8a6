import Foundation
import Testing

/// `get` looks for its file until its `--timeout`, not for a fixed few seconds (SPEC §12):
/// a source that comes up late, or is heard late, still serves the download.
@Suite("A source that appears late", .timeLimit(.minutes(2)))
struct LateSourceTests {
    @Test("a seeder that starts 8 s after `get --timeout 40` still serves it")
    func lateSeeder() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let data = try TransferFixtures.share("late.bin", size: 300_000, peer: "seed", in: swarm)
        let get = try swarm.launch(["get", "late.bin", "--timeout", "40"], name: "fetch")
        try await Task.sleep(for: .seconds(8))
        #expect(get.isRunning, "get gave up before the seeder came: \(get.transcript())")
        _ = try swarm.launch(["serve"], name: "seed")
        let status = try await get.waitForExit(timeout: .seconds(40))
        #expect(status == 0, "\(get.transcript())")
        #expect(
            TransferFixtures.sha256(of: TransferFixtures.downloaded("late.bin", peer: "fetch", in: swarm))
                == TransferFixtures.sha256(data)
        )
    }

    @Test("without --timeout a name nobody offers is still reported within seconds")
    func nobodyOffers() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let started = ContinuousClock.now
        let get = try swarm.launch(["get", "nothing.bin"], name: "fetch")
        let status = try await get.waitForExit(timeout: .seconds(30))
        #expect(status != 0)
        #expect(ContinuousClock.now - started < .seconds(15), "\(get.transcript())")
        #expect(get.lines(.stderr).contains { $0.text.contains("no peer offers") }, "\(get.transcript())")
    }
}
