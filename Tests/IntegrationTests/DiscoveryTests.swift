import Foundation
import Testing

/// Discovery between real `p2p` processes on loopback (SPEC §3 and the discovery figures
/// of §7): a newcomer is known to all within 1 s, a stopped peer is gone within 0.5 s, a
/// killed one within three announce intervals.
///
/// Serialized: the latencies are measured, and on two cores other swarms starting at the
/// same moment would measure the machine, not discovery.
@Suite("Discovery on loopback", .serialized, .timeLimit(.minutes(1)))
struct DiscoveryTests {
    /// `--announce-interval` for these swarms.
    static let interval = 0.5

    /// How a test ends a peer gracefully.
    enum GracefulStop: String, CaseIterable, CustomTestStringConvertible {
        case sigterm
        case sigint
        case exitCommand

        var testDescription: String {
            switch self {
            case .sigterm: "SIGTERM"
            case .sigint: "SIGINT"
            case .exitCommand: "'exit' on stdin"
            }
        }

        func apply(to shell: ShellPeer) throws {
            switch self {
            case .sigterm: shell.process.terminate()
            case .sigint: shell.process.interrupt()
            case .exitCommand: try shell.process.send("exit")
            }
        }
    }

    @Test("three peers find each other; a fourth is known to all within 1 s of its start")
    func fourthPeerJoinsWithinOneSecond() async throws {
        let swarm = try TestSwarm(announceInterval: Self.interval)
        defer { swarm.shutdown() }
        let first = try await swarm.launchShells(3)
        try await Polling.waitForFullMesh(first, timeout: .seconds(3))
        let firstIDs = Set(first.map(\.shortID))

        // The newcomer's id is not known before its first line, so the others are polled
        // for any peer beyond the first three, from the moment it is launched.
        let process = try swarm.launch(["shell"], name: "peer4")
        let seen = try await Polling.firstTimes(first, timeout: .seconds(3)) { _, peers in
            peers.contains { !firstIDs.contains($0.shortID) }
        }
        let newcomer = try await ShellPeer(process: process, timeout: .seconds(5))
        let started = try await process.waitForLine(in: .stderr, containing: "discovery started", timeout: .seconds(5))
        let newcomerKnowsAll = try await Polling.firstTimes([newcomer], timeout: .seconds(3)) { _, peers in
            Set(peers.map(\.shortID)) == firstIDs
        }

        for (shell, time) in zip(first, seen) {
            try #require(time != nil, "\(shell.name) never listed the newcomer")
            #expect(try await shell.lists(newcomer.shortID), "\(shell.name) lists another peer than the newcomer")
        }
        let knownToAll = try #require(seen.compactMap { $0 }.max())
        let fromLaunch = knownToAll - process.launchTime
        let fromBanner = knownToAll - newcomer.bannerTime
        let fromDiscoveryStart = knownToAll - started.line.time
        let learned = try #require(newcomerKnowsAll[0], "the newcomer never listed the three others")
        MeasurementLog.record(
            "loopback join: known to all \(fromLaunch.formatted) after launch (\(fromBanner.formatted) after its"
                + " first stdout line, \(fromDiscoveryStart.formatted) after its 'discovery started' log line;"
                + " start-up itself took \((newcomer.bannerTime - process.launchTime).formatted)); the newcomer knew"
                + " all three \((learned - process.launchTime).formatted) after launch"
        )
        // Measured from the moment the peer's discovery runs: the start-up of a debug
        // binary before that (dynamic loading, folders) is not discovery, and on a loaded
        // CI machine it alone can take most of a second. The figures from launch are
        // recorded above, and measured without load by scripts/bench.sh.
        #expect(
            fromDiscoveryStart <= .seconds(1),
            "the newcomer was known to all only \(fromDiscoveryStart) after its discovery started"
        )
        #expect(
            learned - started.line.time <= .seconds(1),
            "the newcomer knew the swarm only \(learned - started.line.time) after its discovery started"
        )
        #expect(fromLaunch <= .seconds(3), "start-up and join took \(fromLaunch)")
    }

    @Test(
        "a peer that stops gracefully is gone from all others within 0.5 s and exits 0",
        arguments: GracefulStop.allCases
    )
    func stoppedPeerLeavesAtOnce(_ stop: GracefulStop) async throws {
        let swarm = try TestSwarm(announceInterval: Self.interval)
        defer { swarm.shutdown() }
        let shells = try await swarm.launchShells(4)
        try await Polling.waitForFullMesh(shells, timeout: .seconds(3))
        let leaving = shells[3]
        let others = Array(shells[0..<3])

        let stopTime = ContinuousClock.now
        try stop.apply(to: leaving)
        let gone = try await Polling.firstTimes(others, timeout: .seconds(3)) { _, peers in
            !peers.contains { $0.shortID == leaving.shortID }
        }
        let status = try await leaving.process.waitForExit(timeout: .seconds(5))

        let latest = try #require(
            gone.compactMap { $0 }.count == others.count ? gone.compactMap { $0 }.max() : nil,
            "the stopped peer was still listed after 3 s"
        )
        let latency = latest - stopTime
        MeasurementLog.record(
            "loopback stop (\(stop.testDescription)): gone from all others \(latency.formatted) after the stop"
        )
        #expect(latency <= .milliseconds(500), "the stopped peer was listed for \(latency)")
        #expect(status == 0, "exit status \(status); \(leaving.process.transcript())")
        #expect(leaving.process.lines(.stderr).contains { $0.text.contains("discovery stopped") })
        // The others stay as they were.
        try await Polling.waitForFullMesh(others, timeout: .seconds(1))
    }

    @Test("a killed peer is gone from all others within 3 announce intervals, not before 2")
    func killedPeerExpires() async throws {
        let swarm = try TestSwarm(announceInterval: Self.interval)
        defer { swarm.shutdown() }
        let shells = try await swarm.launchShells(4)
        try await Polling.waitForFullMesh(shells, timeout: .seconds(3))
        let victim = shells[3]
        let others = Array(shells[0..<3])

        let killTime = ContinuousClock.now
        victim.process.kill()
        let gone = try await Polling.firstTimes(others, timeout: .seconds(4)) { _, peers in
            !peers.contains { $0.shortID == victim.shortID }
        }
        let termination = try await victim.process.waitForTermination(timeout: .seconds(5))
        #expect(termination == PeerProcess.Termination(status: SIGKILL, bySignal: true))

        let times = gone.compactMap { $0 }
        try #require(times.count == others.count, "the killed peer was still listed 4 s after SIGKILL")
        let earliest = times.min()! - killTime
        let latest = times.max()! - killTime
        MeasurementLog.record(
            "loopback kill: gone from the others \(earliest.formatted) to \(latest.formatted) after SIGKILL"
                + " (interval \(Self.interval) s, bound \(3 * Self.interval) s + 0.15 s)"
        )
        // Expiry is three intervals after the last `alive` heard, which was at most one
        // interval before the kill: so between two and three intervals after it.
        #expect(latest <= .seconds(3 * Self.interval) + .milliseconds(150), "the killed peer was listed for \(latest)")
        #expect(
            earliest >= .seconds(2 * Self.interval) - .milliseconds(100),
            "the killed peer expired early, after \(earliest)"
        )
        try await Polling.waitForFullMesh(others, timeout: .seconds(1))
    }

    @Test("junk datagrams on the discovery port, unicast and broadcast, change nothing")
    func junkDatagramsChangeNothing() async throws {
        let swarm = try TestSwarm(announceInterval: Self.interval)
        defer { swarm.shutdown() }
        // One peer logs at debug level, to show the junk did arrive and was dropped.
        let shells = [
            try await swarm.launchShell(logLevel: "debug"),
            try await swarm.launchShell(),
            try await swarm.launchShell(),
        ]
        try await Polling.waitForFullMesh(shells, timeout: .seconds(3))
        var before: [Set<ListedPeer>] = []
        for shell in shells { before.append(Set(try await shell.peers().peers)) }

        let junk = JunkDatagrams.all()
        let sender = try DatagramSender()
        for datagram in junk {
            try sender.send(datagram, to: "127.0.0.1", port: swarm.discoveryPort)
            try sender.send(datagram, to: "127.255.255.255", port: swarm.discoveryPort)
        }
        // Long enough for any effect to show: two announce intervals.
        try await Task.sleep(for: .seconds(2 * Self.interval))

        for (shell, listed) in zip(shells, before) {
            #expect(shell.process.isRunning, "\(shell.name) died: \(shell.process.transcript())")
            let now = Set(try await shell.peers().peers)
            let sortedBefore = listed.sorted { $0.id < $1.id }
            let sortedAfter = now.sorted { $0.id < $1.id }
            #expect(now == listed, "\(shell.name) listed \(sortedBefore) before the junk, \(sortedAfter) after")
        }
        let dropped = shells[0].process.lines(.stderr).filter {
            $0.text.contains("dropped a malformed discovery datagram")
        }
        // Every broadcast copy reaches every peer; unicast copies reach one peer each.
        #expect(
            dropped.count >= junk.count,
            "the debug peer logged \(dropped.count) dropped datagrams for \(junk.count) broadcast"
        )
        for shell in shells {
            let bad = shell.process.lines(.stderr).filter {
                $0.text.contains(" error ") || $0.text.contains(" critical ")
            }
            #expect(bad.isEmpty, "\(shell.name) logged \(bad)")
        }
        MeasurementLog.record(
            "junk: \(junk.count) datagrams sent twice (unicast and broadcast); the debug peer dropped \(dropped.count)"
        )
    }
}
