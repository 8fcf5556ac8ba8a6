import Foundation
import Testing

/// `serve --accept`, `send` and the shell's `accept` and `send` on loopback (SPEC §10).
@Suite("Delivery on loopback", .serialized, .timeLimit(.minutes(2)))
struct DeliveryTests {
    static let secret = "correct horse battery staple"

    @Test(
        "--accept, and send, without a network key: one line saying why, non-zero exit",
        arguments: [
            (["serve", "--accept"], "--accept takes deliveries only from peers that hold the network key"),
            (["shell", "--accept"], "--accept takes deliveries only from peers that hold the network key"),
            (["send", "some.file"], "send needs the network key"),
        ]
    )
    func refusedWithoutKey(_ arguments: [String], _ reason: String) async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let process = try swarm.launch(arguments, name: "keyless")
        let status = try await process.waitForExit(timeout: .seconds(10))
        try await process.waitForOutputToEnd(timeout: .seconds(2))
        let stderr = process.lines(.stderr).map(\.text).filter { !$0.isEmpty }
        #expect(status != 0)
        #expect(stderr.count == 1, "stderr: \(stderr)")
        let line = try #require(stderr.first)
        #expect(line.hasPrefix("p2p: ") && line.contains(reason), "\(line)")
        #expect(line.contains("--secret-file") && line.contains("P2P_SECRET"), "\(line)")
    }

    @Test("the shell: accept on needs the key; with it, one shell sends a file to another that accepts")
    func shellSendAndAccept() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let keyless = try await swarm.launchShell(name: "keyless")
        let before = keyless.process.lineCount(.stdout)
        try keyless.process.send("accept on")
        try await keyless.process.waitForLine(
            in: .stdout,
            from: before,
            containing: "deliveries are taken only from peers that hold the network key",
            timeout: .seconds(5)
        )

        let receiver = try await ShellPeer(
            process: swarm.launch(["shell", "--secret", Self.secret, "--name", "desk"], name: "receiver"),
            timeout: .seconds(10)
        )
        let sender = try await ShellPeer(
            process: swarm.launch(["shell", "--secret", Self.secret, "--name", "laptop"], name: "sender"),
            timeout: .seconds(10)
        )
        let data = TransferFixtures.bytes(700_000, seed: 21)
        let file = swarm.directory.appendingPathComponent("sender/report.pdf")
        try Data(data).write(to: file)

        // Not accepting yet: the send fails with the receiver's reason.
        var mark = sender.process.lineCount(.stdout)
        try sender.process.send("send \(file.path) to desk")
        try await sender.process.waitForLine(
            in: .stdout,
            from: mark,
            containing: "does not accept deliveries",
            timeout: .seconds(20)
        )
        mark = receiver.process.lineCount(.stdout)
        try receiver.process.send("accept on")
        try await receiver.process.waitForLine(
            in: .stdout,
            from: mark,
            containing: "accepting deliveries",
            timeout: .seconds(5)
        )
        mark = sender.process.lineCount(.stdout)
        try sender.process.send("send \(file.path) to desk")
        try await sender.process.waitForLine(
            in: .stdout,
            from: mark,
            containing: "delivered \(file.path) to desk, each with a verified receipt",
            timeout: .seconds(30)
        )
        #expect(
            TransferFixtures.sha256(of: TransferFixtures.downloaded("report.pdf", peer: "receiver", in: swarm))
                == TransferFixtures.sha256(data)
        )
    }
}
