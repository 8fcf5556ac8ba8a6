import Testing

/// `p2p serve` (SPEC §6): a peer without the command loop, until SIGINT or SIGTERM.
@Suite("p2p serve", .timeLimit(.minutes(1)))
struct ServeCommandTests {
    /// `peer ready` as `p2p serve` logs it, with its id and transfer port.
    static var ready: Regex<(Substring, Substring, Substring)> {
        /peer\.id=([0-9a-f]{8}) transfer\.port=([0-9]+) .*peer ready/
    }

    @Test("a serving peer is listed by a shell; on SIGTERM it announces stop, leaves at once and exits 0")
    func serveUntilSIGTERM() async throws {
        let swarm = try TestSwarm(announceInterval: 0.5)
        defer { swarm.shutdown() }
        let shell = try await swarm.launchShell()
        let server = try swarm.launch(["serve"], name: "server")
        let (line, _) = try await server.waitForLine(
            in: .stderr,
            matching: { $0.contains(Self.ready) },
            timeout: .seconds(10)
        )
        let match = try #require(line.text.firstMatch(of: Self.ready))
        let serverID = String(match.1)
        let serverPort = try #require(Int(match.2))
        #expect(
            try await Polling.until(timeout: .seconds(2)) {
                try await shell.peers().peers.contains { $0.shortID == serverID && $0.port == serverPort }
            },
            "the shell never listed the server \(serverID) on port \(serverPort)"
        )
        // It serves without reading stdin: end of input does not stop it.
        server.closeStandardInput()
        try await Task.sleep(for: .milliseconds(200))
        #expect(server.isRunning, "\(server.transcript())")

        server.terminate()
        #expect(
            try await Polling.until(timeout: .milliseconds(500)) { try await !shell.lists(serverID) },
            "the server was still listed 0.5 s after SIGTERM"
        )
        #expect(try await server.waitForExit(timeout: .seconds(5)) == 0)
        try await server.waitForOutputToEnd(timeout: .seconds(2))
        #expect(server.lines(.stdout).isEmpty, "stdout: \(server.lines(.stdout))")
    }
}
