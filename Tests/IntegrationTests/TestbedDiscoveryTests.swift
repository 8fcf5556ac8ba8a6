import Testing

/// Discovery across hosts: one `p2p` per network namespace on a bridge (SPEC §9), each
/// with `--interface eth0`, so every datagram crosses the bridge. Needs root and iproute2.
@Suite(
    "Discovery across testbed hosts",
    .serialized,
    .timeLimit(.minutes(1)),
    .enabled(
        if: Testbed.isAvailable,
        "needs root and iproute2 to build the namespace testbed (scripts/testbed.sh check)"
    )
)
struct TestbedDiscoveryTests {
    static let interval = 0.5

    @Test("four hosts find each other; a late one joins within 1 s, a stopped one leaves at once, a killed one expires")
    func discoveryAcrossHosts() async throws {
        try await Testbed.with(hosts: 4) { testbed in
            let swarm = try TestSwarm(announceInterval: Self.interval)
            defer { swarm.shutdown() }
            var shells: [ShellPeer] = []
            for host in 1...3 {
                shells.append(try await testbed.launchShell(host: host, in: swarm))
            }
            try await Polling.waitForFullMesh(shells, timeout: .seconds(3))
            // Each peer is seen at its host's address, with the port it announced.
            for shell in shells {
                let listed = try await shell.peers().peers
                for other in shells where other.shortID != shell.shortID {
                    let host = shells.firstIndex { $0.shortID == other.shortID }! + 1
                    let entry = try #require(listed.first { $0.shortID == other.shortID })
                    #expect(entry.address == testbed.address(host: host), "\(shell.name) lists \(entry)")
                    #expect(entry.port == other.transferPort, "\(shell.name) lists \(entry)")
                }
            }

            // A late fourth host.
            let knownIDs = Set(shells.map(\.shortID))
            let process = try testbed.launch(host: 4, ["shell"], in: swarm)
            let seen = try await Polling.firstTimes(shells, timeout: .seconds(3)) { _, peers in
                peers.contains { !knownIDs.contains($0.shortID) }
            }
            let fourth = try await ShellPeer(process: process, timeout: .seconds(5))
            let joined = try #require(
                seen.count == 3 && seen.allSatisfy { $0 != nil } ? seen.compactMap { $0 }.max() : nil,
                "the fourth host was not listed by all within 3 s"
            )
            shells.append(fourth)
            try await Polling.waitForFullMesh(shells, timeout: .seconds(1))
            let joinLatency = joined - process.launchTime
            MeasurementLog.record(
                "testbed join: known to all \(joinLatency.formatted) after launch"
                    + " (\((joined - fourth.bannerTime).formatted) after its first stdout line)"
            )
            // From the newcomer's first line (its sockets are bound then): the start-up of a
            // debug binary before that is not discovery, and is slow on a loaded machine.
            #expect(joined - fourth.bannerTime <= .seconds(1))
            #expect(joinLatency <= .seconds(3))

            // Host 4 stops gracefully.
            let stopTime = ContinuousClock.now
            fourth.process.terminate()
            let others = Array(shells[0..<3])
            let gone = try await Polling.firstTimes(others, timeout: .seconds(3)) { _, peers in
                !peers.contains { $0.shortID == fourth.shortID }
            }
            let stopped = try #require(
                gone.allSatisfy { $0 != nil } ? gone.compactMap { $0 }.max() : nil,
                "the stopped host was still listed after 3 s"
            )
            #expect(try await fourth.process.waitForExit(timeout: .seconds(5)) == 0)
            let stopLatency = stopped - stopTime
            MeasurementLog.record(
                "testbed stop (SIGTERM): gone from all others \(stopLatency.formatted) after the signal"
            )
            #expect(stopLatency <= .milliseconds(500))

            // Host 3 is killed.
            let victim = shells[2]
            let survivors = Array(shells[0..<2])
            let killTime = ContinuousClock.now
            victim.process.kill()
            let expired = try await Polling.firstTimes(survivors, timeout: .seconds(4)) { _, peers in
                !peers.contains { $0.shortID == victim.shortID }
            }
            let times = expired.compactMap { $0 }
            try #require(times.count == survivors.count, "the killed host was still listed 4 s after SIGKILL")
            let earliest = times.min()! - killTime
            let latest = times.max()! - killTime
            MeasurementLog.record(
                "testbed kill: gone from the others \(earliest.formatted) to \(latest.formatted) after SIGKILL"
            )
            #expect(latest <= .seconds(3 * Self.interval) + .milliseconds(150))
            #expect(earliest >= .seconds(2 * Self.interval) - .milliseconds(100))
            try await Polling.waitForFullMesh(survivors, timeout: .seconds(1))
        }
    }

    @Test(
        "--peer on one side: a keyed peer heard by unicast from outside the other's networks is listed; an unkeyed one is not",
        arguments: [true, false]
    )
    func oneSidedPeer(keyed: Bool) async throws {
        try await Testbed.with(hosts: 2) { testbed in
            let swarm = try TestSwarm(announceInterval: Self.interval)
            defer { swarm.shutdown() }
            let key = keyed ? ["--secret", "one-sided-peer-test-secret-0123456789"] : []
            // Host 1 takes part in discovery on loopback only: host 2's datagrams reach it
            // by unicast to its own address, from outside its networks.
            let quiet = try await ShellPeer(
                process: testbed.launch(host: 1, ["shell"] + key, in: swarm, interface: "lo"),
                timeout: .seconds(10)
            )
            let named = try await ShellPeer(
                process: testbed.launch(
                    host: 2,
                    ["shell", "--peer", "\(testbed.address(host: 1)):\(swarm.discoveryPort)"] + key,
                    in: swarm
                ),
                timeout: .seconds(10)
            )
            let heard = try await Polling.until(timeout: .seconds(3)) { try await quiet.lists(named.shortID) }
            #expect(heard == keyed)
            if keyed {
                #expect(try await Polling.until(timeout: .seconds(3)) { try await named.lists(quiet.shortID) })
            }
        }
    }
}
