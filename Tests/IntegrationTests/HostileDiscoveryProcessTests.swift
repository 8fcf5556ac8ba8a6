import Foundation
import NIOCore
import P2P
import Testing

/// A hostile sender on the LAN against real `p2p` processes on loopback: forged `stop`s
/// and floods of forged ids.
@Suite("Hostile discovery between p2p processes", .serialized, .timeLimit(.minutes(2)))
struct HostileDiscoveryProcessTests {
    @Test("a forged stop from another address does not evict a serving peer; its own stop does")
    func forgedStopIsIgnored() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let shells = try await swarm.launchShells(2)
        try await Polling.waitForFullMesh(shells, timeout: .seconds(3))
        let (watcher, victim) = (shells[0], shells[1])
        let listed = try await watcher.peers().peers
        let victimID = try #require(listed.first { $0.shortID == victim.shortID }.flatMap { PeerID(hex: $0.id) })

        // Broadcast on loopback from another socket than the victim's: every peer hears it.
        let forged = Announcement(kind: .stop, peerID: victimID, transferPort: 1, announceIntervalMilliseconds: 500)
        let sender = try DatagramSender()
        for _ in 0..<5 {
            try sender.send(Array(forged.encoded().readableBytesView), to: "127.255.255.255", port: swarm.discoveryPort)
        }
        try await Task.sleep(for: .seconds(1))
        let left = watcher.process.lines(.stderr).filter { $0.text.contains("peer left") }
        #expect(left.isEmpty, "the forged stop evicted the victim: \(left.map(\.text))")
        #expect(try await watcher.lists(victim.shortID))

        // The victim's own stop still removes it at once.
        try victim.process.send("exit")
        _ = try await watcher.process.waitForLine(in: .stderr, containing: "peer left", timeout: .seconds(3))
    }

    @Test("100,000 forged alives from 32 addresses leave at most 1,024 peers and the honest one listed")
    func floodOfForgedIDs() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let shells = try await swarm.launchShells(2)
        try await Polling.waitForFullMesh(shells, timeout: .seconds(3))
        let (target, honest) = (shells[0], shells[1])
        let before = Self.memory(of: target.process.pid)

        let senders = try (1...32).map { try DatagramSender(bindHost: "127.1.0.\($0)") }
        var generator = SystemRandomNumberGenerator()
        let total = 100_000
        for index in 0..<total {
            let forged = Announcement(
                kind: .alive,
                peerID: PeerID(high: generator.next(), low: generator.next()),
                transferPort: 9,
                announceIntervalMilliseconds: .max
            )
            try senders[index % senders.count].send(
                Array(forged.encoded().readableBytesView),
                to: "127.255.255.255",
                port: swarm.discoveryPort
            )
            // A pause every 256 datagrams lets the peer read them rather than the kernel
            // drop most of them: the flood is meant to reach the table.
            if index % 256 == 255 { try await Task.sleep(for: .milliseconds(2)) }
        }
        try await Task.sleep(for: .milliseconds(500))
        let listed = try await target.peers(timeout: .seconds(5)).peers
        let after = Self.memory(of: target.process.pid)
        #expect(listed.count <= PeerRoster.Limits.defaultMaximumPeers)
        #expect(listed.count > 900, "the flood never reached the table: \(listed.count) peers")
        #expect(listed.contains { $0.shortID == honest.shortID })
        #expect(target.process.isRunning)
        MeasurementLog.record(
            "forged-id flood: \(total) alives from 32 addresses; the peer lists \(listed.count) peers;"
                + " RSS \(before.rss / 1024) → \(after.rss / 1024) MiB, peak \(after.peak / 1024) MiB"
        )
        #expect(after.peak < 200 * 1024, "peak RSS \(after.peak) KiB")
    }

    /// VmRSS and VmHWM of a process, in KiB.
    static func memory(of pid: Int32) -> (rss: Int, peak: Int) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return (field("VmRSS"), field("VmHWM"))
    }
}
