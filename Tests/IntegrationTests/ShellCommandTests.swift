import Testing

/// `p2p shell` driven through stdin, as a script would (SPEC §6).
@Suite("p2p shell", .timeLimit(.minutes(1)))
struct ShellCommandTests {
    @Test("'exit' ends the shell with exit code 0")
    func exitCommandEndsTheShell() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let shell = try await swarm.launchShell()
        try shell.process.send("exit")
        let status = try await shell.process.waitForExit(timeout: .seconds(5))
        #expect(status == 0, "\(shell.process.transcript())")
        try await shell.process.waitForOutputToEnd(timeout: .seconds(2))
        #expect(shell.process.lines(.stdout).count == 1, "stdout: \(shell.process.lines(.stdout))")
    }

    @Test("'quit' is 'exit' too")
    func quitCommandEndsTheShell() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let shell = try await swarm.launchShell()
        try shell.process.send("quit")
        #expect(try await shell.process.waitForExit(timeout: .seconds(5)) == 0)
    }

    @Test("end of input ends the shell with exit code 0")
    func endOfInputEndsTheShell() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let shell = try await swarm.launchShell()
        shell.process.closeStandardInput()
        let status = try await shell.process.waitForExit(timeout: .seconds(5))
        #expect(status == 0, "\(shell.process.transcript())")
    }

    @Test("an unknown command prints a one-line hint and the loop goes on")
    func unknownCommandPrintsAHint() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let shell = try await swarm.launchShell()
        let before = shell.process.lineCount(.stdout)
        try shell.process.send("frobnicate the widgets")
        let (hint, hintIndex) = try await shell.process.waitForLine(
            in: .stdout,
            from: before,
            matching: { _ in true },
            timeout: .seconds(5)
        )
        #expect(hintIndex == before)
        #expect(hint.text.contains("frobnicate"), "hint: \(hint.text)")
        #expect(hint.text.contains("help"), "hint: \(hint.text)")
        // The very next line answers the next command: the hint was one line, and the loop
        // still runs.
        try shell.process.send("peers --json")
        let (answer, answerIndex) = try await shell.process.waitForLine(
            in: .stdout,
            from: hintIndex + 1,
            matching: { _ in true },
            timeout: .seconds(5)
        )
        #expect(answerIndex == hintIndex + 1)
        #expect(try ListedPeer.parseArray(answer.text) == [], "answer: \(answer.text)")
        // Blank lines are ignored, and help lists the commands.
        try shell.process.send("")
        try shell.process.send("help")
        let (help, helpIndex) = try await shell.process.waitForLine(
            in: .stdout,
            from: answerIndex + 1,
            matching: { _ in true },
            timeout: .seconds(5)
        )
        #expect(help.text.hasPrefix("commands:"), "after a blank line and 'help': \(help.text)")
        try await shell.process.waitForLine(in: .stdout, from: helpIndex, containing: "exit", timeout: .seconds(5))
        try shell.process.send("exit")
        #expect(try await shell.process.waitForExit(timeout: .seconds(5)) == 0)
    }

    @Test("stdout carries only the shell's output; logs go to stderr")
    func logsGoToStandardError() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let shell = try await swarm.launchShell()
        try await shell.process.waitForLine(in: .stderr, containing: "discovery started", timeout: .seconds(5))
        let ready = try await shell.process.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(5))
        #expect(ready.line.text.contains("peer.id=\(shell.shortID)"), "\(ready.line.text)")
        #expect(ready.line.text.contains("transfer.port=\(shell.transferPort)"), "\(ready.line.text)")
        try shell.process.send("exit")
        #expect(try await shell.process.waitForExit(timeout: .seconds(5)) == 0)
        try await shell.process.waitForOutputToEnd(timeout: .seconds(2))
        let stdout = shell.process.lines(.stdout).map(\.text)
        #expect(stdout.count == 1 && stdout[0].wholeMatch(of: ShellPeer.banner) != nil, "stdout: \(stdout)")
    }
}
