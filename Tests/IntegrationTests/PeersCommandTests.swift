import Testing

/// `p2p peers` (SPEC §6): an observer that lists the serving peers and exits.
@Suite("p2p peers", .timeLimit(.minutes(1)))
struct PeersCommandTests {
    @Test("'p2p peers --json' prints a JSON array of the serving peers' ids, addresses and ports")
    func peersJSONListsTheServingPeers() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let shells = try await swarm.launchShells(2)
        try await Polling.waitForFullMesh(shells, timeout: .seconds(3))

        let observer = try swarm.launch(["peers", "--wait", "1", "--json"], name: "observer")
        let status = try await observer.waitForExit(timeout: .seconds(10))
        try await observer.waitForOutputToEnd(timeout: .seconds(2))
        #expect(status == 0, "\(observer.transcript())")
        let stdout = observer.lines(.stdout).map(\.text)
        try #require(stdout.count == 1, "stdout should be one JSON line: \(stdout)")
        let listed = try ListedPeer.parseArray(stdout[0])

        let expected = Set(shells.map { "\($0.shortID) 127.0.0.1 \($0.transferPort)" })
        #expect(Set(listed.map { "\($0.shortID) \($0.address) \($0.port)" }) == expected)
        #expect(listed.count == shells.count)
        for peer in listed {
            #expect(peer.id.count == 32 && peer.id.allSatisfy(\.isHexDigit), "id \(peer.id)")
        }
        // The full ids agree with what the peers themselves list.
        let fromShells = Set(try await shells[0].peers().peers.map(\.id) + shells[1].peers().peers.map(\.id))
        #expect(Set(listed.map(\.id)) == fromShells)
        // An observer serves nothing, so the serving peers never list it.
        for shell in shells {
            #expect(try await shell.peers().peers.count == 1)
        }
    }

    @Test("'p2p peers' prints a table, or says there are none")
    func peersTable() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let empty = try swarm.launch(["peers", "--wait", "0.3"], name: "lonely")
        #expect(try await empty.waitForExit(timeout: .seconds(10)) == 0)
        try await empty.waitForOutputToEnd(timeout: .seconds(2))
        #expect(empty.lines(.stdout).map(\.text) == ["no peers found"])

        let shell = try await swarm.launchShell()
        let observer = try swarm.launch(["peers", "--wait", "1"], name: "observer")
        #expect(try await observer.waitForExit(timeout: .seconds(10)) == 0)
        try await observer.waitForOutputToEnd(timeout: .seconds(2))
        let stdout = observer.lines(.stdout).map(\.text)
        #expect(stdout.count == 2, "\(stdout)")
        #expect(stdout.first?.hasPrefix("NAME") == true, "\(stdout)")
        // NAME (the host name), PEER ID, ADDRESS.
        let cells = stdout.last?.split(separator: " ").map(String.init) ?? []
        #expect(cells.count == 3 && cells[1].hasPrefix(shell.shortID), "\(stdout)")
        #expect(stdout.last?.hasSuffix("127.0.0.1:\(shell.transferPort)") == true, "\(stdout)")
    }

    @Test("--name is announced: 'peers' shows it, finds the peer by it, and tells two of one name apart")
    func names() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let build = try await ShellPeer(process: swarm.launch(["shell", "--name", "build box"]), timeout: .seconds(10))
        let twins = [
            try await ShellPeer(process: swarm.launch(["shell", "--name", "twin"]), timeout: .seconds(10)),
            try await ShellPeer(process: swarm.launch(["shell", "--name", "twin"]), timeout: .seconds(10)),
        ]
        try await Polling.waitForFullMesh([build] + twins, timeout: .seconds(3))
        let listed = try await build.peers().peers
        #expect(Set(listed.compactMap(\.name)) == ["twin"], "\(listed)")
        #expect(Set(listed.compactMap(\.label)) == Set(twins.map { "twin#\($0.shortID)" }), "\(listed)")
        let observer = try swarm.launch(["peers", "build box", "--json", "--wait", "1"], name: "observer")
        #expect(try await observer.waitForExit(timeout: .seconds(10)) == 0)
        try await observer.waitForOutputToEnd(timeout: .seconds(2))
        let found = try ListedPeer.parseArray(observer.lines(.stdout).map(\.text).joined())
        #expect(found.map(\.shortID) == [build.shortID] && found.first?.name == "build box", "\(found)")
        let refused = try swarm.launch(["peers", "--name", "bad\u{202E}name"], name: "refused")
        #expect(try await refused.waitForExit(timeout: .seconds(10)) != 0)
        let ambiguous = try swarm.launch(["peers", "twin", "--wait", "1"], name: "ambiguous")
        #expect(try await ambiguous.waitForExit(timeout: .seconds(10)) != 0)
        try await ambiguous.waitForOutputToEnd(timeout: .seconds(2))
        #expect(
            ambiguous.lines(.stderr).contains { $0.text.contains("names 2 peers") && $0.text.contains("twin#") },
            "\(ambiguous.transcript())"
        )
    }
}
