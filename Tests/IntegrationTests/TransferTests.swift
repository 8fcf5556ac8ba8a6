import Foundation
import P2P
import Testing

/// Downloads between real `p2p` processes on loopback: content-identical results, several
/// sources, peers that die, downloads that resume, peers that lie, names that attack.
@Suite("Swarm transfer between p2p processes", .timeLimit(.minutes(3)))
struct TransferTests {
    static let chunk = 262_144

    @Test(
        "empty, 1-byte, chunk-size and chunk-size+1 files arrive byte-identical",
        arguments: [0, 1, chunk, chunk + 1]
    )
    func edgeSizes(size: Int) async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let data = try TransferFixtures.share("edge.bin", size: size, seed: UInt64(size) + 3, peer: "seed", in: swarm)
        _ = try swarm.launch(["serve"], name: "seed")
        let (status, summary, process) = try await TransferFixtures.get("edge.bin", as: "fetch", in: swarm)
        #expect(status == 0, "\(process.transcript())")
        #expect(summary?.size == size)
        let result = TransferFixtures.downloaded("edge.bin", peer: "fetch", in: swarm)
        #expect(TransferFixtures.sha256(of: result) == TransferFixtures.sha256(data))
        #expect(TransferFixtures.partials(peer: "fetch", in: swarm).isEmpty)
    }

    @Test("two full seeders are both used by one download")
    func twoSeeders() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = 8 << 20
        let data = try TransferFixtures.share("two.bin", size: size, peer: "seed1", in: swarm)
        try TransferFixtures.share("two.bin", size: size, peer: "seed2", in: swarm)
        // Paced so that neither seeder can finish the file alone before the other is asked.
        let seeders = try ["seed1", "seed2"].map { try swarm.launch(["serve", "--upload-rate", "4M"], name: $0) }
        // Both serving before the download looks for holders: one still starting when the
        // lookup ends joins the download only later.
        for seeder in seeders {
            _ = try await seeder.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        }
        let (status, summary, process) = try await TransferFixtures.get("two.bin", as: "fetch", in: swarm)
        #expect(status == 0, "\(process.transcript())")
        let peers = try #require(summary?.bytesFromPeers)
        #expect(peers.count == 2, "bytes from \(peers)")
        #expect(peers.values.allSatisfy { $0 > 0 })
        #expect(peers.values.reduce(0, +) == size)
        #expect(
            TransferFixtures.sha256(of: TransferFixtures.downloaded("two.bin", peer: "fetch", in: swarm))
                == TransferFixtures.sha256(data)
        )
    }

    @Test("a file whose chunks are spread over three peers, none with all, is rebuilt byte-identical")
    func spreadChunks() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        // The origin hashes the file with the library, hands each peer a third of the
        // chunks (two as downloads in progress, one as pushed chunks in its cache), and
        // never runs.
        let data = try TransferFixtures.share("spread.bin", size: 9 * Self.chunk + 1234, peer: "origin", in: swarm)
        let origin = try await ChunkStore.open(
            configuration: TransferFixtures.storage(of: "origin", in: swarm),
            logger: TransferFixtures.logger
        )
        let id = try #require(await origin.inventory().first?.id)
        let manifest = try #require(await origin.manifest(for: id))
        #expect(manifest.chunkCount == 10)
        for (number, name) in ["a", "b", "c"].enumerated() {
            let store = try await ChunkStore.open(
                configuration: TransferFixtures.storage(of: name, in: swarm),
                logger: TransferFixtures.logger
            )
            let mine = stride(from: number, to: manifest.chunkCount, by: 3)
            if name == "c" {
                for index in mine {
                    let outcome = await store.storePushed(
                        try #require(try await origin.readChunk(id, index: index)),
                        chunk: index,
                        of: manifest
                    )
                    #expect(outcome == .stored)
                }
            } else {
                let partial = try await store.beginDownload(manifest)
                for index in mine {
                    try await partial.write(try #require(try await origin.readChunk(id, index: index)), chunk: index)
                }
                await store.suspendDownload(id)
            }
            await store.close()
            _ = try swarm.launch(["serve", "--distribute-interval", "0"], name: name)
        }
        await origin.close()
        let (status, summary, process) = try await TransferFixtures.get("spread.bin", as: "fetch", in: swarm)
        #expect(status == 0, "\(process.transcript())")
        #expect(summary?.bytesFromPeers.count == 3, "bytes from \(summary?.bytesFromPeers ?? [:])")
        #expect(
            TransferFixtures.sha256(of: TransferFixtures.downloaded("spread.bin", peer: "fetch", in: swarm))
                == TransferFixtures.sha256(data)
        )
    }

    @Test("a seeder killed mid-download costs nothing: the download completes from the other")
    func seederKilled() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = 12 << 20
        let data = try TransferFixtures.share("survive.bin", size: size, peer: "seed1", in: swarm)
        try TransferFixtures.share("survive.bin", size: size, peer: "seed2", in: swarm)
        let doomed = try swarm.launch(["serve", "--upload-rate", "3M"], name: "seed1")
        let survivor = try swarm.launch(["serve", "--upload-rate", "3M"], name: "seed2")
        // Both serving before the download looks for holders: a seeder still starting when
        // the lookup ends joins the download only later, and may have sent nothing when it
        // is killed (seen in CI: all 12 MiB came from the survivor).
        for seeder in [doomed, survivor] {
            _ = try await seeder.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        }
        let get = try swarm.launch(["get", "survive.bin", "--json", "--progress", "json"], name: "fetch")
        // Kill the first seeder once both have sent chunks: told by a progress line that
        // counts two active peers, which a poll of the partial record can miss (on a busy
        // machine a 2-second download runs start to end between two polls) and a fixed
        // wait after the start can come before (a loaded seeder may not have sent yet).
        _ = try await get.waitForLine(
            in: .stdout,
            matching: { $0.contains("\"type\":\"progress\"") && $0.contains("\"peers\":2") },
            timeout: .seconds(20)
        )
        doomed.kill()
        let status = try await get.waitForExit(timeout: .seconds(60))
        try? await get.waitForOutputToEnd(timeout: .seconds(5))
        #expect(status == 0, "\(get.transcript())")
        let summary = try #require(get.lines(.stdout).compactMap { TransferFixtures.parse($0.text) }.first)
        #expect(summary.bytesFromPeers.count == 2, "the killed seeder had sent nothing: \(summary.bytesFromPeers)")
        #expect(summary.bytesFromPeers.values.reduce(0, +) == size)
        #expect(
            TransferFixtures.sha256(of: TransferFixtures.downloaded("survive.bin", peer: "fetch", in: swarm))
                == TransferFixtures.sha256(data)
        )
    }

    @Test("a killed download resumes from its .partial and fetches only what was missing")
    func killAndResume() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = 24 * Self.chunk
        let data = try TransferFixtures.share("resume.bin", size: size, peer: "seed", in: swarm)
        _ = try swarm.launch(["serve", "--upload-rate", "1M"], name: "seed")
        let first = try swarm.launch(["get", "resume.bin"], name: "fetch")
        let partials = swarm.directory.appendingPathComponent("fetch/.p2p/partials")
        // Wait until the record names at least four chunks, then kill the downloader.
        let progressed = await Self.waitUntil(timeout: .seconds(30)) {
            guard let name = try? FileManager.default.contentsOfDirectory(atPath: partials.path).first,
                let attributes = try? FileManager.default.attributesOfItem(
                    atPath: partials.appendingPathComponent(name).path
                ),
                let recordSize = attributes[.size] as? Int
            else { return false }
            // 4-byte length + manifest (48 + name + 32 per chunk) + 4 bytes per chunk.
            return recordSize >= 4 + 48 + 10 + 32 * 24 + 4 * 4
        }
        #expect(progressed, "\(first.transcript())")
        first.kill()
        _ = try await first.waitForTermination(timeout: .seconds(10))
        let partial = try #require(TransferFixtures.partials(peer: "fetch", in: swarm).first)

        let (status, summary, process) = try await TransferFixtures.get("resume.bin", as: "fetch", in: swarm)
        #expect(status == 0, "\(process.transcript())")
        let resumed = try #require(summary)
        #expect(resumed.chunksAlreadyHeld >= 4 && resumed.chunksAlreadyHeld < 24)
        // Only the remainder came over the network.
        #expect(resumed.bytesFromPeers.values.reduce(0, +) == size - resumed.chunksAlreadyHeld * Self.chunk)
        #expect(
            TransferFixtures.sha256(of: TransferFixtures.downloaded("resume.bin", peer: "fetch", in: swarm))
                == TransferFixtures.sha256(data)
        )
        #expect(!FileManager.default.fileExists(atPath: partial.path))
    }

    @Test("a timed-out download keeps its .partial, names the missing chunks and the peers tried, exits non-zero")
    func timeoutKeepsPartial() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        try TransferFixtures.share("slow.bin", size: 16 * Self.chunk, peer: "seed", in: swarm)
        _ = try swarm.launch(["serve", "--upload-rate", "256k"], name: "seed")
        let (status, summary, process) = try await TransferFixtures.get(
            "slow.bin",
            as: "fetch",
            in: swarm,
            extra: ["--timeout", "3"]
        )
        #expect(status != 0)
        #expect(summary == nil)
        let errors = process.lines(.stderr).map(\.text).filter { $0.hasPrefix("p2p:") }
        #expect(errors.count == 1, "\(process.transcript())")
        let message = try #require(errors.first)
        #expect(message.contains("chunks missing"))
        #expect(message.contains("tried"))
        let partial = try #require(TransferFixtures.partials(peer: "fetch", in: swarm).first)
        #expect(message.contains(partial.lastPathComponent))
        #expect(
            !FileManager.default.fileExists(
                atPath: TransferFixtures.downloaded("slow.bin", peer: "fetch", in: swarm).path
            )
        )
    }

    /// Downloads a file of `chunks` chunks that an honest seeder, limited to `uploadRate`,
    /// and a peer that lies in the way given both hold; checks that the download succeeds
    /// and is intact, then hands the liar, the file's size and the result to `check`.
    func downloadBesideLiar(
        _ lie: LyingPeer.Lie,
        chunks: Int,
        uploadRate: String,
        check: @Sendable (LyingPeer, Int, TransferFixtures.Summary?, PeerProcess) -> Void
    ) async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = chunks * Self.chunk
        let data = try TransferFixtures.share("target.bin", size: size, peer: "seed", in: swarm)
        try TransferFixtures.share("target.bin", size: size, peer: "liar", in: swarm)
        _ = try swarm.launch(["serve", "--upload-rate", uploadRate], name: "seed")
        try await LyingPeer.with(storage: TransferFixtures.storage(of: "liar", in: swarm), lie: lie, in: swarm) {
            liar in
            let (status, summary, process) = try await TransferFixtures.get("target.bin", as: "fetch", in: swarm)
            #expect(status == 0, "\(process.transcript())")
            #expect(
                TransferFixtures.sha256(of: TransferFixtures.downloaded("target.bin", peer: "fetch", in: swarm))
                    == TransferFixtures.sha256(data)
            )
            check(liar, size, summary, process)
        }
    }

    @Test("a peer serving corrupted chunks never corrupts the result")
    func corruptPeer() async throws {
        // Slow enough (2 s for the file) that the liar is known and asked well before the
        // honest seeder could have sent everything, even on a loaded machine.
        try await self.downloadBesideLiar(.corruptChunks, chunks: 16, uploadRate: "2M") { liar, _, summary, process in
            #expect(summary?.bytesFromPeers[liar.id.description] == nil, "bytes credited to the liar")
            #expect(process.lines(.stderr).contains { $0.text.contains("chunk failed verification") })
        }
    }

    @Test("with only a lying peer the download fails cleanly and no file appears")
    func onlyLiars() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        try TransferFixtures.share("lie.bin", size: 4 * Self.chunk, peer: "liar", in: swarm)
        try await LyingPeer.with(
            storage: TransferFixtures.storage(of: "liar", in: swarm),
            lie: .corruptChunks,
            in: swarm
        ) { _ in
            let (status, _, process) = try await TransferFixtures.get(
                "lie.bin",
                as: "fetch",
                in: swarm,
                extra: ["--timeout", "5"]
            )
            #expect(status != 0)
            #expect(process.lines(.stderr).contains { $0.text.hasPrefix("p2p:") && $0.text.contains("chunks missing") })
            #expect(
                !FileManager.default.fileExists(
                    atPath: TransferFixtures.downloaded("lie.bin", peer: "fetch", in: swarm).path
                )
            )
        }
    }

    @Test(
        "unsafe names are refused with one line, and nothing is written",
        arguments: ["../x", "/etc/passwd", "a/../../b", "bad\u{1}name", "..", "dir\\file"]
    )
    func unsafeNames(name: String) async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let process = try swarm.launch(["get", name, "--timeout", "2"], name: "fetch")
        let status = try await process.waitForExit(timeout: .seconds(20))
        try? await process.waitForOutputToEnd(timeout: .seconds(5))
        #expect(status != 0)
        let errors = process.lines(.stderr).map(\.text)
        #expect(errors.count == 1 && errors[0].contains("refused file name"), "\(errors)")
        let downloads = swarm.directory.appendingPathComponent("fetch/downloads")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: downloads.path))?.isEmpty ?? true)
    }

    @Test("after distribution has spread a file, it stays downloadable when its origin leaves")
    func originLeaves() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = 8 * Self.chunk + 77
        let data = try TransferFixtures.share("spread.bin", size: size, peer: "origin", in: swarm)
        let fast = ["--distribute-interval", "0.3", "--distribute-rate", "64M"]
        let origin = try swarm.launch(["serve"] + fast, name: "origin")
        _ = try swarm.launch(["serve"] + fast, name: "b")
        _ = try swarm.launch(["serve"] + fast, name: "c")
        // Wait until `p2p ls` shows three peers holding every chunk: the origin, b and c.
        let spread = try await Polling.until(every: .milliseconds(200), timeout: .seconds(30)) {
            let ls = try swarm.launch(["ls", "--json", "--wait", "0.7"], name: swarm.nextName("lister"))
            guard try await ls.waitForExit(timeout: .seconds(20)) == 0,
                let line = ls.lines(.stdout).first?.text, let json = line.data(using: .utf8),
                let files = try JSONSerialization.jsonObject(with: json) as? [[String: Any]],
                let file = files.first(where: { $0["name"] as? String == "spread.bin" }),
                let count = file["chunkCount"] as? Int, let peers = file["peers"] as? [String: Int]
            else { return false }
            return peers.values.filter { $0 == count }.count >= 3
        }
        #expect(spread, "distribution did not give b and c every chunk")
        origin.terminate()
        _ = try await origin.waitForExit(timeout: .seconds(10))
        // The download may need several rounds more to find every chunk among b and c.
        let (status, summary, process) = try await TransferFixtures.get(
            "spread.bin",
            as: "fetch",
            in: swarm,
            extra: ["--timeout", "40"]
        )
        #expect(status == 0, "\(process.transcript())")
        // Distribution may have pushed some chunks to the new peer before it asked.
        let fetched = try #require(summary)
        #expect(fetched.bytesFromPeers.values.reduce(0, +) <= size)
        #expect(
            TransferFixtures.sha256(of: TransferFixtures.downloaded("spread.bin", peer: "fetch", in: swarm))
                == TransferFixtures.sha256(data)
        )
    }

    @Test("the shell's list and download, driven through standard input")
    func shellListAndDownload() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let data = try TransferFixtures.share("movie.mkv", size: 3 * Self.chunk + 5, peer: "seed", in: swarm)
        _ = try swarm.launch(["serve"], name: "seed")
        let shell = try await swarm.launchShell(name: "user")
        // Wait until the shell knows the seeder.
        #expect(try await Polling.until(timeout: .seconds(5)) { !(try await shell.peers().peers.isEmpty) })
        let before = shell.process.lineCount(.stdout)
        try shell.process.send("list")
        let (header, index) = try await shell.process.waitForLine(
            in: .stdout,
            from: before,
            containing: "NAME",
            timeout: .seconds(10)
        )
        #expect(header.text.contains("SWARM"))
        let (row, _) = try await shell.process.waitForLine(
            in: .stdout,
            from: index + 1,
            containing: "movie.mkv",
            timeout: .seconds(5)
        )
        let cells = row.text.split(separator: " ").map(String.init)
        // NAME, SIZE (two words), HERE, SWARM, PEERS, ID, HELD BY (the seeder's name).
        #expect(cells.count == 8 && cells[3] == "0/4" && cells[4] == "4/4" && cells[5] == "1", "\(row.text)")
        try shell.process.send("download movie.mkv")
        let (done, _) = try await shell.process.waitForLine(
            in: .stdout,
            from: index,
            containing: "downloaded movie.mkv",
            timeout: .seconds(30)
        )
        #expect(done.text.contains("from 1 peer"))
        #expect(
            TransferFixtures.sha256(of: TransferFixtures.downloaded("movie.mkv", peer: "user", in: swarm))
                == TransferFixtures.sha256(data)
        )
        let after = shell.process.lineCount(.stdout)
        try shell.process.send("list")
        let (again, _) = try await shell.process.waitForLine(
            in: .stdout,
            from: after,
            containing: "movie.mkv",
            timeout: .seconds(10)
        )
        let columns = again.text.split(separator: " ").map(String.init)
        #expect(columns.count >= 4 && columns[3] == "4/4" && columns[4] == "4/4", "\(again.text)")
        try shell.process.send("exit")
        #expect(try await shell.process.waitForExit(timeout: .seconds(10)) == 0)
    }

    @Test(
        "a peer that lies about the manifest or about the chunks it holds does not stop the download",
        arguments: [LyingPeer.Lie.wrongManifest, .claimsAllServesNone]
    )
    func otherLies(lie: LyingPeer.Lie) async throws {
        try await self.downloadBesideLiar(lie, chunks: 12, uploadRate: "4M") { liar, size, summary, _ in
            // Its chunks are genuine when only its manifest lies: taking them is right, since
            // each is checked against the manifest that does hash to the file id.
            if lie == .claimsAllServesNone {
                #expect(summary?.bytesFromPeers[liar.id.description] == nil)
            }
            #expect(summary?.bytesFromPeers.values.reduce(0, +) == size)
        }
    }

    @Test(
        "a peer whose notice of unrelayed chunks is malformed or names a chunk twice is dropped; the download completes",
        arguments: [LyingPeer.Lie.misfitUnrelayedNotice, .repeatedUnrelayedNotice]
    )
    func badUnrelayedNotices(lie: LyingPeer.Lie) async throws {
        let expected =
            lie == .misfitUnrelayedNotice
            ? "unrelayed chunks that do not fit the file" : "a chunk named twice as unrelayed"
        try await self.downloadBesideLiar(lie, chunks: 6, uploadRate: "2M") { liar, _, summary, process in
            // Each connection to the liar ends at its notice, before any chunk.
            #expect(summary?.bytesFromPeers[liar.id.description] == nil)
            #expect(process.lines(.stderr).contains { $0.text.contains(expected) }, "\(process.transcript())")
        }
    }

    @Test("peak memory of a 256 MiB download stays under 64 MiB")
    func boundedMemory() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        // Written in 1 MiB blocks so the test itself stays small.
        let folder = try swarm.workingDirectory(for: "seed").appendingPathComponent("shared")
        #expect(FileManager.default.createFile(atPath: folder.appendingPathComponent("large.bin").path, contents: nil))
        let handle = try FileHandle(forWritingTo: folder.appendingPathComponent("large.bin"))
        for block in 0..<256 {
            try handle.write(contentsOf: TransferFixtures.bytes(1 << 20, seed: UInt64(block) + 11))
        }
        try handle.close()
        let seed = try swarm.launch(["serve"], name: "seed")
        _ = try await seed.waitForLine(in: .stderr, containing: "discovery started", timeout: .seconds(60))
        let get = try swarm.launch(["get", "large.bin", "--json", "--seed"], name: "fetch")
        _ = try await get.waitForLine(in: .stdout, containing: "bytesFromPeers", timeout: .seconds(120))
        let peak = try #require(TransferFixtures.peakRSS(pid: get.pid))
        let seederPeak = try #require(TransferFixtures.peakRSS(pid: seed.pid))
        MeasurementLog.record(
            "peak RSS, 256 MiB download: downloader \(peak >> 20) MiB, seeder \(seederPeak >> 20) MiB"
        )
        #expect(peak < 64 << 20, "downloader peak RSS \(peak >> 20) MiB")
        #expect(seederPeak < 64 << 20, "seeder peak RSS \(seederPeak >> 20) MiB")
        get.terminate()
        #expect(try await get.waitForExit(timeout: .seconds(10)) == 0)
    }

    /// Polls `check` every 50 ms until it holds or `timeout` passes.
    static func waitUntil(timeout: Duration, _ check: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if check() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return check()
    }
}
