import Foundation
import Testing

/// `p2p send` and `serve --accept` (SPEC §10) across hosts of the namespace testbed: one
/// sender, several receivers, each a real `p2p` process in a host of its own. Needs root and
/// iproute2.
@Suite(
    "Delivery to many across testbed hosts",
    .serialized,
    .timeLimit(.minutes(3)),
    .enabled(
        if: Testbed.isAvailable,
        "needs root and iproute2 to build the namespace testbed (scripts/testbed.sh check)"
    )
)
struct TestbedDeliveryTests {
    /// A receipt as `send --json` prints it.
    struct Receipt: Decodable {
        var target: String
        var targetName: String
        var sender: String
        var id: String
        var name: String
        var size: Int
        var offer: String
        var receipt: String
    }

    /// Writes a network key (from `p2p key`'s format) into the swarm's folder.
    static func keyFile(_ swarm: TestSwarm, named name: String = "swarm.key", seed: UInt64 = 1) throws -> String {
        let bytes = TransferFixtures.bytes(32, seed: seed)
        let key =
            "p2pk-"
            + Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let url = swarm.directory.appendingPathComponent(name)
        try Data((key + "\n").utf8).write(to: url)
        return url.path
    }

    /// Writes a file to send into the sender's folder, outside its share folder.
    static func fileToSend(
        _ name: String,
        size: Int,
        seed: UInt64,
        peer: String,
        in swarm: TestSwarm
    ) throws -> (path: String, sha256: String) {
        let data = TransferFixtures.bytes(size, seed: seed)
        let url = try swarm.workingDirectory(for: peer).appendingPathComponent(name)
        try Data(data).write(to: url)
        return (url.path, TransferFixtures.sha256(data))
    }

    /// Starts a receiver in host `index` and waits until it serves.
    static func receiver(
        _ index: Int,
        _ extra: [String],
        on testbed: Testbed,
        in swarm: TestSwarm
    ) async throws -> PeerProcess {
        let process = try testbed.launch(host: index, ["serve"] + extra, in: swarm, name: "h\(index)")
        try await process.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        return process
    }

    /// Runs `p2p send` in host `index` to the end.
    static func send(
        _ arguments: [String],
        from index: Int = 1,
        on testbed: Testbed,
        in swarm: TestSwarm,
        timeout: Duration = .seconds(90)
    ) async throws -> (status: Int32, receipts: [Receipt], process: PeerProcess) {
        let process = try testbed.launch(
            host: index,
            ["send"] + arguments,
            in: swarm,
            name: swarm.nextName("send")
        )
        let status = try await process.waitForExit(timeout: timeout)
        try? await process.waitForOutputToEnd(timeout: .seconds(5))
        let receipts = process.lines(.stdout).compactMap {
            try? JSONDecoder().decode([Receipt].self, from: Data($0.text.utf8))
        }.first
        return (status, receipts ?? [], process)
    }

    /// The number after `key=` in a log line; 0 if it is not there.
    static func count(_ key: String, in line: String) -> Int {
        guard let range = line.range(of: key + "=") else { return 0 }
        return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    /// Starts `serve --accept` with the key in each host, under the name given, one after
    /// the other.
    static func acceptingReceivers(
        _ hosts: [(Int, String)],
        key: String,
        on testbed: Testbed,
        in swarm: TestSwarm
    ) async throws -> [PeerProcess] {
        var receivers: [PeerProcess] = []
        for (index, name) in hosts {
            receivers.append(
                try await Self.receiver(
                    index,
                    ["--accept", "--name", name, "--secret-file", key],
                    on: testbed,
                    in: swarm
                )
            )
        }
        return receivers
    }

    static func stderr(_ process: PeerProcess) -> String {
        process.lines(.stderr).map(\.text).joined(separator: "\n")
    }

    /// What a host holds of deliveries: finished files and partial ones.
    static func held(_ name: String, host: String, in swarm: TestSwarm) -> (file: String?, partials: Int) {
        (
            TransferFixtures.sha256(of: TransferFixtures.downloaded(name, peer: host, in: swarm)),
            TransferFixtures.partials(peer: host, in: swarm).count
        )
    }

    @Test("send to all: three accepting receivers verify the file, each with a receipt; then to one by name")
    func toAllThenNamed() async throws {
        try await Testbed.with(hosts: 4, rate: "200mbit") { testbed in
            let swarm = try TestSwarm()
            defer { swarm.shutdown() }
            let key = try Self.keyFile(swarm)
            let image = try Self.fileToSend("image.iso", size: 12 << 20, seed: 7, peer: "h1", in: swarm)
            let notes = try Self.fileToSend("notes.txt", size: 300_000, seed: 8, peer: "h1", in: swarm)
            let receivers = try await Self.acceptingReceivers(
                [(2, "alpha"), (3, "beta"), (4, "gamma")],
                key: key,
                on: testbed,
                in: swarm
            )
            let toAll = try await Self.send(
                [image.path, "--to", "all", "--timeout", "60", "--json", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            #expect(toAll.status == 0, "\(toAll.process.transcript())")
            #expect(toAll.receipts.map(\.targetName).sorted() == ["alpha", "beta", "gamma"])
            #expect(Set(toAll.receipts.map(\.offer)).count == 3, "each offer has a number of its own")
            #expect(
                toAll.receipts.allSatisfy { $0.name == "image.iso" && $0.size == 12 << 20 && $0.receipt.count == 64 }
            )
            for host in ["h2", "h3", "h4"] {
                #expect(Self.held("image.iso", host: host, in: swarm).file == image.sha256, "\(host)")
            }
            // Through the swarm, as a flash crowd: the sender hands each of the 48 chunks out
            // once, and the targets relay them to one another.
            let counts = try receivers.map { receiver in
                let done = try #require(receiver.lines(.stderr).first { $0.text.contains("download complete") })
                return (Self.count("chunks.assigned", in: done.text), Self.count("chunks.relayed", in: done.text))
            }
            #expect(counts.map(\.0).reduce(0, +) <= 48, "\(counts)")
            #expect(counts.map(\.1).reduce(0, +) > 0, "\(counts)")
            let toBeta = try await Self.send(
                [notes.path, "--to", "beta", "--timeout", "60", "--json", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            #expect(toBeta.status == 0, "\(toBeta.process.transcript())")
            #expect(toBeta.receipts.map(\.targetName) == ["beta"])
            #expect(Self.held("notes.txt", host: "h3", in: swarm).file == notes.sha256)
            for host in ["h2", "h4"] {
                #expect(Self.held("notes.txt", host: host, in: swarm) == (nil, 0), "\(host)")
            }
            // Sent again: the file is there, so the receipt comes at once.
            let again = try await Self.send(
                [notes.path, "--to", "beta", "--timeout", "20", "--json", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            #expect(again.status == 0, "\(again.process.transcript())")
            #expect(again.receipts.map(\.targetName) == ["beta"])
        }
    }

    /// Every file under `root`, by path relative to it, with its SHA-256; and its folders.
    static func tree(at root: URL) -> (files: [String: String], folders: Set<String>) {
        var files: [String: String] = [:]
        var folders: Set<String> = []
        let prefix = root.standardizedFileURL.path + "/"
        guard let walk = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isDirectoryKey]) else {
            return (files, folders)
        }
        for case let url as URL in walk {
            let relative = String(url.standardizedFileURL.path.dropFirst(prefix.count))
            if (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true {
                folders.insert(relative)
            } else {
                files[relative] = TransferFixtures.sha256(of: url)
            }
        }
        return (files, folders)
    }

    @Test("send FOLDER: a nested tree with an empty folder arrives whole at every accepting target, with receipts")
    func folderToAll() async throws {
        try await Testbed.with(hosts: 3, rate: "200mbit") { testbed in
            let swarm = try TestSwarm()
            defer { swarm.shutdown() }
            let key = try Self.keyFile(swarm)
            let folder = try swarm.workingDirectory(for: "h1").appendingPathComponent("build-42")
            let files: [(String, Int)] = [
                ("app.bin", 3 << 20), ("lib/core.so", 700_000), ("lib/plugins/a.so", 65_537),
                ("lib/plugins/b.so", 1), ("docs/README.txt", 4_000),
            ]
            for (index, (path, size)) in files.enumerated() {
                let url = folder.appendingPathComponent(path)
                try FileManager.default.createDirectory(
                    at: url.deletingLastPathComponent(),
                    withIntermediateDirectories: true
                )
                try Data(TransferFixtures.bytes(size, seed: UInt64(20 + index))).write(to: url)
            }
            try FileManager.default.createDirectory(
                at: folder.appendingPathComponent("logs/empty"),
                withIntermediateDirectories: true
            )
            let sent = Self.tree(at: folder)
            let receivers = try await Self.acceptingReceivers(
                [(2, "alpha"), (3, "beta")],
                key: key,
                on: testbed,
                in: swarm
            )
            let delivery = try await Self.send(
                [folder.path, "--to", "all", "--timeout", "60", "--json", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            #expect(delivery.status == 0, "\(delivery.process.transcript())")
            #expect(delivery.receipts.map(\.targetName).sorted() == ["alpha", "beta"])
            let total = files.map(\.1).reduce(0, +)
            #expect(delivery.receipts.allSatisfy { $0.name == "build-42" && $0.size == total }, "\(delivery.receipts)")
            for host in ["h2", "h3"] {
                let arrived = Self.tree(at: TransferFixtures.downloaded("build-42", peer: host, in: swarm))
                #expect(arrived.files == sent.files, "\(host)")
                #expect(arrived.folders == sent.folders, "\(host)")
                #expect(TransferFixtures.partials(peer: host, in: swarm).isEmpty, "\(host)")
            }
            // The four small files travelled as one pack, fetched through the swarm as a
            // file; app.bin on its own: two downloads at each target, no more.
            for receiver in receivers {
                let log = Self.stderr(receiver)
                let downloads = log.split(separator: "\n").filter {
                    $0.contains("download started") && !$0.contains("folder download started")
                }
                #expect(downloads.count == 2, "\(log)")
                #expect(downloads.contains { $0.contains("p2p-pack") }, "\(log)")
                #expect(downloads.contains { $0.contains("app.bin") }, "\(log)")
                #expect(!log.contains("the folder's pack failed"), "\(log)")
            }
            // Sent again: the folder is there, so the receipts come at once.
            let again = try await Self.send(
                [folder.path, "--to", "alpha", "--timeout", "20", "--json", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            #expect(again.status == 0, "\(again.process.transcript())")
            #expect(again.receipts.map(\.targetName) == ["alpha"])
        }
    }

    @Test("a target without --accept, and one with another key, get nothing; named, they make send fail saying why")
    func notAcceptingAndOtherKey() async throws {
        try await Testbed.with(hosts: 4) { testbed in
            let swarm = try TestSwarm()
            defer { swarm.shutdown() }
            let key = try Self.keyFile(swarm)
            let otherKey = try Self.keyFile(swarm, named: "other.key", seed: 2)
            let file = try Self.fileToSend("build.tar", size: 3 << 20, seed: 9, peer: "h1", in: swarm)
            _ = try await Self.receiver(
                2,
                ["--accept", "--name", "taker", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            _ = try await Self.receiver(3, ["--name", "closed", "--secret-file", key], on: testbed, in: swarm)
            _ = try await Self.receiver(
                4,
                ["--accept", "--name", "stranger", "--secret-file", otherKey],
                on: testbed,
                in: swarm
            )
            let toAll = try await Self.send(
                [file.path, "--timeout", "60", "--json", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            #expect(toAll.status == 0, "\(toAll.process.transcript())")
            #expect(toAll.receipts.map(\.targetName) == ["taker"])
            #expect(Self.held("build.tar", host: "h2", in: swarm).file == file.sha256)
            let toClosed = try await Self.send(
                [file.path, "--to", "closed", "--timeout", "20", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            #expect(toClosed.status == 1)
            #expect(Self.stderr(toClosed.process).contains("closed: missing build.tar"))
            #expect(Self.stderr(toClosed.process).contains("does not accept deliveries"))
            let toStranger = try await Self.send(
                [file.path, "--to", "stranger", "--timeout", "4", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            #expect(toStranger.status == 1)
            #expect(Self.stderr(toStranger.process).contains("stranger: no such peer heard"))
            for host in ["h3", "h4"] {
                #expect(Self.held("build.tar", host: host, in: swarm) == (nil, 0), "\(host)")
            }
        }
    }

    @Test(
        "quota, free space and a different file at the name: refused before a byte is written, the reasons shown at the sender"
    )
    func quotaFreeSpaceAndExistingFile() async throws {
        try await Testbed.with(hosts: 4) { testbed in
            let swarm = try TestSwarm()
            defer { swarm.shutdown() }
            let key = try Self.keyFile(swarm)
            let file = try Self.fileToSend("dataset.bin", size: 2 << 20, seed: 10, peer: "h1", in: swarm)
            _ = try await Self.receiver(
                2,
                ["--accept", "--accept-max-bytes", "1M", "--name", "small-quota", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            // A disk that is full for this delivery: every byte free must stay free.
            _ = try await Self.receiver(
                3,
                ["--accept", "--accept-keep-free", "1000000G", "--name", "full-disk", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            // Another file already has the name in this one's downloads folder.
            let other = TransferFixtures.bytes(1000, seed: 99)
            let existing = TransferFixtures.downloaded("dataset.bin", peer: "h4", in: swarm)
            try FileManager.default.createDirectory(
                at: existing.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try Data(other).write(to: existing)
            _ = try await Self.receiver(
                4,
                ["--accept", "--name", "occupied", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            let sent = try await Self.send(
                [
                    file.path, "--to", "small-quota", "--to", "full-disk", "--to", "occupied", "--timeout", "30",
                    "--secret-file", key,
                ],
                on: testbed,
                in: swarm
            )
            let errors = Self.stderr(sent.process)
            #expect(sent.status == 1, "\(sent.process.transcript())")
            #expect(errors.contains("small-quota: missing dataset.bin (0 of 2097152 bytes): refused: over its quota"))
            #expect(
                errors.contains("full-disk: missing dataset.bin (0 of 2097152 bytes): refused: too little free space")
            )
            #expect(errors.contains("occupied: missing dataset.bin (0 of 2097152 bytes): refused: "), "\(errors)")
            #expect(errors.contains("holds another file"), "\(errors)")
            for host in ["h2", "h3"] {
                #expect(Self.held("dataset.bin", host: host, in: swarm) == (nil, 0), "\(host)")
            }
            #expect(Self.held("dataset.bin", host: "h4", in: swarm) == (TransferFixtures.sha256(other), 0))
        }
    }

    @Test("send to all waits for an accepting peer: one that comes online late gets the delivery")
    func lateTarget() async throws {
        try await Testbed.with(hosts: 2) { testbed in
            let swarm = try TestSwarm()
            defer { swarm.shutdown() }
            let key = try Self.keyFile(swarm)
            let file = try Self.fileToSend("late.bin", size: 1 << 20, seed: 11, peer: "h1", in: swarm)
            let send = try testbed.launch(
                host: 1,
                ["send", file.path, "--to", "all", "--timeout", "60", "--json", "--secret-file", key],
                in: swarm,
                name: "send"
            )
            try await send.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
            try await Task.sleep(for: .seconds(3))
            #expect(send.isRunning, "with nobody accepting, send waits: \(send.transcript())")
            _ = try await Self.receiver(
                2,
                ["--accept", "--name", "latecomer", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            let status = try await send.waitForExit(timeout: .seconds(60))
            try? await send.waitForOutputToEnd(timeout: .seconds(5))
            #expect(status == 0, "\(send.transcript())")
            #expect(Self.held("late.bin", host: "h2", in: swarm).file == file.sha256)
        }
    }

    @Test("the sender killed mid-send: the targets keep their partial files and finish when it sends again")
    func senderKilled() async throws {
        try await Testbed.with(hosts: 3, rate: "40mbit") { testbed in
            let swarm = try TestSwarm()
            defer { swarm.shutdown() }
            let key = try Self.keyFile(swarm)
            let file = try Self.fileToSend("vm.img", size: 24 << 20, seed: 12, peer: "h1", in: swarm)
            let receivers = [
                try await Self.receiver(2, ["--accept", "--name", "r2", "--secret-file", key], on: testbed, in: swarm),
                try await Self.receiver(3, ["--accept", "--name", "r3", "--secret-file", key], on: testbed, in: swarm),
            ]
            let first = try testbed.launch(
                host: 1,
                ["send", file.path, "--timeout", "60", "--secret-file", key],
                in: swarm,
                name: "send-first"
            )
            // Both fetching, a few MiB in (40 Mbit/s moves 24 MiB in about 5 s), then killed.
            for receiver in receivers {
                try await receiver.waitForLine(in: .stderr, containing: "download started", timeout: .seconds(30))
            }
            try await Task.sleep(for: .milliseconds(1500))
            first.kill()
            _ = try await first.waitForTermination(timeout: .seconds(10))
            // Each target notices within its next progress report and stops, keeping its partial.
            for (host, receiver) in zip(["h2", "h3"], receivers) {
                try await receiver.waitForLine(in: .stderr, containing: "delivery not finished", timeout: .seconds(20))
                #expect(Self.held("vm.img", host: host, in: swarm) == (nil, 1), "\(host): \(receiver.transcript())")
            }
            let second = try await Self.send(
                [file.path, "--timeout", "60", "--json", "--secret-file", key],
                on: testbed,
                in: swarm
            )
            #expect(second.status == 0, "\(second.process.transcript())")
            #expect(second.receipts.map(\.targetName).sorted() == ["r2", "r3"])
            for (host, receiver) in zip(["h2", "h3"], receivers) {
                #expect(Self.held("vm.img", host: host, in: swarm) == (file.sha256, 0), "\(host)")
                // The second fetch started from what the first one kept.
                let starts = receiver.lines(.stderr).filter { $0.text.contains("download started") }
                let resumed = starts.count == 2 && !starts[1].text.contains("chunks.held=0 ")
                #expect(resumed, "\(starts.map(\.text))")
            }
        }
    }
}
