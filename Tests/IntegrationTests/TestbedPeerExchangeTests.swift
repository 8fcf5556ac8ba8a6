import Testing

/// Peer exchange (SPEC §12) across two subnets of the namespace testbed joined by a router
/// that forwards no broadcasts: a peer given one `--peer` on the other subnet learns the
/// rest of that swarm, and the rest learn it, within two announce intervals. Needs root
/// and iproute2.
@Suite(
    "Peer exchange across testbed subnets",
    .serialized,
    .timeLimit(.minutes(1)),
    .enabled(
        if: Testbed.isAvailable,
        "needs root and iproute2 to build the namespace testbed (scripts/testbed.sh check)"
    )
)
struct TestbedPeerExchangeTests {
    static let interval = 0.5

    @Test(
        "one --peer on the other subnet: the whole swarm known both ways within two intervals (keyed: one-sided)",
        arguments: [true, false]
    )
    func exchange(keyed: Bool) async throws {
        try await Testbed.with(hosts: 3, secondSubnet: 1) { testbed in
            let swarm = try TestSwarm(announceInterval: Self.interval)
            defer { swarm.shutdown() }
            let key = keyed ? ["--secret", "peer-exchange-test-secret-0123456789"] : []
            let remote = 4
            // Without a key a datagram from outside the networks is heard only from a
            // `--peer`: the bootstrap peer names the newcomer too (README).
            var local: [ShellPeer] = []
            for host in 1...3 {
                let bootstrap =
                    host == 1 && !keyed ? ["--peer", "\(testbed.address(host: remote)):\(swarm.discoveryPort)"] : []
                local.append(
                    try await ShellPeer(
                        process: testbed.launch(host: host, ["shell"] + key + bootstrap, in: swarm),
                        timeout: .seconds(10)
                    )
                )
            }
            try await Polling.waitForFullMesh(local, timeout: .seconds(3))
            let newcomer = try await ShellPeer(
                process: testbed.launch(
                    host: remote,
                    ["shell", "--peer", "\(testbed.address(host: 1)):\(swarm.discoveryPort)"] + key,
                    in: swarm
                ),
                timeout: .seconds(10)
            )
            let everyone = local + [newcomer]
            // Two intervals from its first line, plus the time a `peers` round trip takes.
            let meshed = try await Polling.until(timeout: .seconds(2 * Self.interval) + .milliseconds(300)) {
                for shell in everyone {
                    let listed = Set(try await shell.peers().peers.map(\.shortID))
                    if !Set(everyone.map(\.shortID)).subtracting([shell.shortID]).isSubset(of: listed) { return false }
                }
                return true
            }
            var tables: [String] = []
            for shell in everyone { tables.append("\(shell.name): \(try await shell.peers().peers)") }
            #expect(meshed, "\(tables)")
            // The newcomer lists the others at their own addresses on the other subnet.
            let listed = try await newcomer.peers().peers
            for (index, shell) in local.enumerated() {
                #expect(
                    listed.first { $0.shortID == shell.shortID }?.address == testbed.address(host: index + 1),
                    "\(listed)"
                )
            }
        }
    }
}
