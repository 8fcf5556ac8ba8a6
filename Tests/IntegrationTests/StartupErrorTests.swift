import Testing

/// What a user sees when a peer cannot start (SPEC §6): one clear line on stderr, a
/// non-zero exit, never a stack trace.
@Suite("Start-up errors", .timeLimit(.minutes(1)))
struct StartupErrorTests {
    /// Lines that would mean a crash rather than an error message.
    static let crashMarkers = ["Fatal error", "Stack dump", "Current stack trace", "backtrace", "Segmentation fault"]

    @Test("a transfer port another process holds: one line on stderr, non-zero exit", arguments: ["serve", "shell"])
    func transferPortInUse(_ command: String) async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let holder = try await swarm.launchShell(name: "holder")
        let port = holder.transferPort

        let second = try swarm.launch([command], name: "second", transferPort: port)
        let status = try await second.waitForExit(timeout: .seconds(10))
        try await second.waitForOutputToEnd(timeout: .seconds(2))
        let stderr = second.lines(.stderr).map(\.text).filter { !$0.isEmpty }
        #expect(status != 0)
        #expect(stderr.count == 1, "stderr: \(stderr)")
        let line = try #require(stderr.first)
        #expect(line.contains("\(port)") && line.lowercased().contains("port"), "\(line)")
        #expect(line.contains("--port"), "the line should say what to do: \(line)")
        #expect(line.contains("is in use") && !line.contains("errno"), "in words, not the system call's: \(line)")
        #expect(second.lines(.stdout).isEmpty, "stdout: \(second.lines(.stdout))")
        // The holder is unharmed.
        #expect(holder.process.isRunning)
        #expect(try await holder.peers().peers.isEmpty)
    }

    @Test(
        "a bad option: one line on stderr naming it, non-zero exit, no stack trace",
        arguments: [
            (["--discovery-port", "0"], "--discovery-port"),
            (["--discovery-port", "70000"], "--discovery-port"),
            (["--port", "70000"], "--port"),
            (["--announce-interval", "0"], "--announce-interval"),
            (["--peer", "no-port-here"], "--peer"),
            (["--log-level", "loud"], "--log-level"),
            (["--max-requests-in-flight", "0"], "--max-requests-in-flight"),
            (["--push-interval", "0"], "--push-interval"),
            (["--frobnicate"], "--frobnicate"),
        ]
    )
    func badOption(_ option: [String], _ named: String) async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        // Loopback only and a port of its own, in case the option were wrongly accepted.
        let port = option.contains("--discovery-port") ? [] : ["--discovery-port", "\(swarm.discoveryPort)"]
        let process = try swarm.launch(
            ["serve", "--interface", "lo"] + port + option,
            name: "bad",
            withCommonOptions: false
        )
        let status = try await process.waitForExit(timeout: .seconds(10))
        try await process.waitForOutputToEnd(timeout: .seconds(2))
        let stderr = process.lines(.stderr).map(\.text).filter { !$0.isEmpty }
        #expect(status != 0)
        #expect(stderr.count == 1, "stderr: \(stderr)")
        let line = try #require(stderr.first, "nothing on stderr")
        #expect(line.hasPrefix("p2p: ") && line.contains(named), "\(line)")
        #expect(line.contains("--help"), "the line should say where to look: \(line)")
        #expect(!stderr.contains { line in Self.crashMarkers.contains { line.contains($0) } }, "stderr: \(stderr)")
        #expect(process.lines(.stdout).isEmpty, "stdout: \(process.lines(.stdout))")
    }
}
