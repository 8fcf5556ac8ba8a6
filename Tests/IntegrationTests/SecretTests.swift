import Foundation
import Testing

/// `--secret`: keyed and keyless peers side by side on loopback.
@Suite("Shared network key between p2p processes", .timeLimit(.minutes(2)))
struct SecretTests {
    @Test("keyed peers find and download from each other; keyless and wrong-key peers see and get nothing")
    func keyedAndKeyless() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let data = try TransferFixtures.share("private.bin", size: 1_000_000, peer: "seed", in: swarm)
        let seed = try swarm.launch(["serve", "--secret", "correct horse battery"], name: "seed")
        _ = try await seed.waitForLine(in: .stderr, containing: "discovery started", timeout: .seconds(10))

        // Keyless: not listed, nothing to list, nothing to get.
        let peers = try swarm.launch(["peers", "--json", "--wait", "1"], name: "keyless-peers")
        #expect(try await peers.waitForExit(timeout: .seconds(20)) == 0)
        try? await peers.waitForOutputToEnd(timeout: .seconds(5))
        #expect(peers.lines(.stdout).first?.text == "[]", "\(peers.transcript())")
        // A listing that finds nothing says why it may have: announcements of another key.
        for (name, extra, whose) in [
            ("keyless-ls", [String](), "uses a network key"),
            ("wrong-ls", ["--secret", "wrong horse battery"], "uses another network key"),
        ] {
            let listing = try swarm.launch(["ls", "--wait", "2.5"] + extra, name: name)
            #expect(try await listing.waitForExit(timeout: .seconds(20)) == 0)
            try? await listing.waitForOutputToEnd(timeout: .seconds(5))
            let stdout = listing.lines(.stdout).map(\.text)
            #expect(stdout.contains("no files in the swarm"), "\(listing.transcript())")
            #expect(stdout.contains { $0.hasPrefix("heard 1 peer that \(whose)") }, "\(listing.transcript())")
        }
        let (keylessStatus, _, keyless) = try await TransferFixtures.get(
            "private.bin",
            as: "keyless",
            in: swarm,
            extra: ["--timeout", "3"]
        )
        #expect(keylessStatus != 0, "\(keyless.transcript())")

        // Another key: same.
        let (wrongStatus, _, wrong) = try await TransferFixtures.get(
            "private.bin",
            as: "wrong",
            in: swarm,
            extra: ["--timeout", "3", "--secret", "wrong horse battery"]
        )
        #expect(wrongStatus != 0, "\(wrong.transcript())")
        #expect(
            !FileManager.default.fileExists(
                atPath: TransferFixtures.downloaded("private.bin", peer: "wrong", in: swarm).path
            )
        )

        // The keyed side logged the keyless peers it ignored.
        #expect(seed.lines(.stderr).contains { $0.text.contains("without the network key") })

        // The same key, from a file: the download works.
        let keyFile = swarm.directory.appendingPathComponent("key.txt")
        try "correct horse battery\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let (status, summary, process) = try await TransferFixtures.get(
            "private.bin",
            as: "member",
            in: swarm,
            extra: ["--secret-file", keyFile.path]
        )
        #expect(status == 0, "\(process.transcript())")
        #expect(summary?.size == data.count)
        #expect(
            TransferFixtures.sha256(of: TransferFixtures.downloaded("private.bin", peer: "member", in: swarm))
                == TransferFixtures.sha256(data)
        )
    }

    @Test("p2p key prints a key that --secret takes without a warning; a short passphrase gets one")
    func generatedKey() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let keyProcess = try swarm.launch(["key"], name: "key", withCommonOptions: false)
        #expect(try await keyProcess.waitForExit(timeout: .seconds(10)) == 0)
        try? await keyProcess.waitForOutputToEnd(timeout: .seconds(5))
        let key = try #require(keyProcess.lines(.stdout).first?.text)
        #expect(key.hasPrefix("p2pk-") && key.count == 48, "\(key)")

        for (secret, weak) in [(key, false), ("hunter2hunter2", true)] {
            let peers = try swarm.launch(["peers", "--wait", "0.2", "--secret", secret], name: swarm.nextName("peers"))
            #expect(try await peers.waitForExit(timeout: .seconds(20)) == 0, "\(peers.transcript())")
            try? await peers.waitForOutputToEnd(timeout: .seconds(5))
            let warned = peers.lines(.stderr).contains { $0.text.contains("the network secret is weak") }
            #expect(warned == weak, "\(peers.transcript())")
        }
    }
}
