import Foundation
import Testing

/// The shell and the one-shot commands as a new user meets them: the first listing is
/// complete, a download can be given a timeout and cancelled with Ctrl-C without ending
/// the shell, and mistakes get one line that says what to do.
@Suite("Shell and command polish", .serialized, .timeLimit(.minutes(3)))
struct ShellPolishTests {
    static let chunk = 256 * 1024

    @Test("the first list right after the shell starts already shows a serving peer's file")
    func firstListWaitsForDiscovery() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        try TransferFixtures.share("early.bin", size: 1000, peer: "seed", in: swarm)
        let seed = try swarm.launch(["serve"], name: "seed")
        _ = try await seed.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(10))
        let shell = try await swarm.launchShell(name: "user")
        let before = shell.process.lineCount(.stdout)
        try shell.process.send("list")
        let (answer, _) = try await shell.process.waitForLine(
            in: .stdout,
            from: before,
            matching: { $0.contains("early.bin") || $0.contains("no files") },
            timeout: .seconds(10)
        )
        #expect(answer.text.contains("early.bin"), "\(shell.process.transcript())")
        try shell.process.send("exit")
        #expect(try await shell.process.waitForExit(timeout: .seconds(10)) == 0)
    }

    /// A swarm with a seeder serving `slow.bin` (4 MiB) at 256 KiB/s, and a shell that
    /// knows it. The caller shuts the swarm down.
    static func shellBesideSlowSeed() async throws -> (TestSwarm, ShellPeer) {
        let swarm = try TestSwarm()
        do {
            try TransferFixtures.share("slow.bin", size: 16 * Self.chunk, peer: "seed", in: swarm)
            _ = try swarm.launch(["serve", "--upload-rate", "256k"], name: "seed")
            let shell = try await swarm.launchShell(name: "user")
            #expect(try await Polling.until(timeout: .seconds(5)) { !(try await shell.peers().peers.isEmpty) })
            return (swarm, shell)
        } catch {
            swarm.shutdown()
            throw error
        }
    }

    @Test("download --timeout in the shell gives up with the timeout message and the shell goes on")
    func shellDownloadTimeout() async throws {
        let (swarm, shell) = try await Self.shellBesideSlowSeed()
        defer { swarm.shutdown() }
        let before = shell.process.lineCount(.stdout)
        try shell.process.send("download slow.bin --timeout 2")
        let (failed, _) = try await shell.process.waitForLine(
            in: .stdout,
            from: before,
            containing: "download failed",
            timeout: .seconds(20)
        )
        #expect(failed.text.contains("chunks missing"), "\(failed.text)")
        #expect(TransferFixtures.partials(peer: "user", in: swarm).count == 1)
        #expect(try await shell.peers().peers.count == 1)
        try shell.process.send("exit")
        #expect(try await shell.process.waitForExit(timeout: .seconds(10)) == 0)
    }

    @Test("Ctrl-C cancels the download under way and keeps what arrived; at the prompt it ends the shell")
    func interruptCancelsDownload() async throws {
        let (swarm, shell) = try await Self.shellBesideSlowSeed()
        defer { swarm.shutdown() }
        let before = shell.process.lineCount(.stdout)
        try shell.process.send("download slow.bin")
        _ = try await shell.process.waitForLine(in: .stderr, containing: "download started", timeout: .seconds(10))
        shell.process.interrupt()
        let (cancelled, _) = try await shell.process.waitForLine(
            in: .stdout,
            from: before,
            containing: "download cancelled",
            timeout: .seconds(10)
        )
        #expect(cancelled.text.contains("kept"))
        #expect(shell.process.isRunning)
        #expect(try await shell.peers().peers.count == 1)
        #expect(TransferFixtures.partials(peer: "user", in: swarm).count == 1)
        shell.process.interrupt()
        #expect(try await shell.process.waitForExit(timeout: .seconds(10)) == 0)
    }

    @Test(
        "mistakes on the command line get one line that says what to do",
        arguments: [
            (["get", "x.bin", "--timeout", "-3"], "must be a positive number"),
            (["get", "x.bin", "--timeout", "1e300"], "must be a positive number"),
            (["serve", "--downloads", "no-such-folder"], "does not exist"),
        ]
    )
    func oneLineMistakes(_ arguments: [String], _ expected: String) async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let process = try swarm.launch(
            arguments + [
                "--interface", "lo", "--port", "0", "--discovery-port", "\(swarm.discoveryPort)",
                "--share", "shared", "--state", ".p2p",
            ],
            name: "user",
            withCommonOptions: false
        )
        let status = try await process.waitForExit(timeout: .seconds(10))
        try await process.waitForOutputToEnd(timeout: .seconds(2))
        let stderr = process.lines(.stderr).map(\.text).filter { !$0.isEmpty }
        #expect(status != 0)
        #expect(stderr.count == 1 && stderr[0].contains(expected), "\(stderr)")
    }
}
