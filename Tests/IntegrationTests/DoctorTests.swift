import Foundation
import Testing

/// `p2p doctor` against real peers on loopback: a healthy swarm passes; a peer with another
/// key is named as such, and the command exits 1.
@Suite("p2p doctor", .timeLimit(.minutes(2)))
struct DoctorTests {
    @Test("beside a serving peer every check passes, connect-back included, one line each, exit 0")
    func healthy() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let seed = try swarm.launch(["serve"], name: "seed")
        _ = try await seed.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        let doctor = try swarm.launch(["doctor", "--wait", "1"], name: "doctor")
        let status = try await doctor.waitForExit(timeout: .seconds(30))
        try? await doctor.waitForOutputToEnd(timeout: .seconds(5))
        let lines = doctor.lines(.stdout).map(\.text)
        #expect(status == 0, "\(doctor.transcript())")
        #expect(lines.count == 6, "\(lines)")
        #expect(lines.allSatisfy { $0.hasPrefix("ok ") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("ok   interfaces: lo 127.0.0.1 broadcast 127.255.255.255") })
        #expect(lines.contains { $0.hasPrefix("ok   peers: heard 1 peer") })
        #expect(
            lines.contains { $0.hasPrefix("ok   connect-back: every peer asked reached this host's transfer port") }
        )
    }

    @Test("--speed measures a peer that holds a file, in a throughput line")
    func speed() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        try TransferFixtures.share("speed.bin", size: 4 << 20, peer: "seed", in: swarm)
        let seed = try swarm.launch(["serve"], name: "seed")
        _ = try await seed.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        let doctor = try swarm.launch(["doctor", "--wait", "1", "--speed"], name: "doctor")
        let status = try await doctor.waitForExit(timeout: .seconds(30))
        try? await doctor.waitForOutputToEnd(timeout: .seconds(5))
        #expect(status == 0, "\(doctor.transcript())")
        let line = try #require(doctor.lines(.stdout).map(\.text).first { $0.contains("throughput:") })
        #expect(line.hasPrefix("ok   throughput: "), "\(line)")
        #expect(line.contains("/s"), "\(line)")
    }

    @Test("a peer with another key fails the key check with what to do; --json gives the checks; exit 1")
    func otherKey() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let stranger = try swarm.launch(["serve", "--secret", "p2pk-one-key-for-the-doctor-test-0"], name: "stranger")
        _ = try await stranger.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        let doctor = try swarm.launch(
            ["doctor", "--wait", "1.5", "--json", "--secret", "p2pk-another-key-for-the-doctor-0"],
            name: "doctor"
        )
        let status = try await doctor.waitForExit(timeout: .seconds(30))
        try? await doctor.waitForOutputToEnd(timeout: .seconds(5))
        #expect(status == 1, "\(doctor.transcript())")
        let output = doctor.lines(.stdout).map(\.text).joined()
        let checks = try #require(
            try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]],
            "\(doctor.transcript())"
        )
        let key = try #require(checks.first { $0["name"] as? String == "network key" })
        #expect(key["status"] as? String == "failed")
        #expect((key["finding"] as? String)?.contains("1 peer uses another --secret") == true, "\(key)")
        #expect((key["advice"] as? String)?.contains("same --secret") == true)
    }
}
