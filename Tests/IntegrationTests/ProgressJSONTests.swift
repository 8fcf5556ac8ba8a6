import Foundation
import Testing

/// `p2p get --progress json`: JSON lines a second on stdout while the download runs, then
/// the summary object.
@Suite("get --progress json", .timeLimit(.minutes(3)))
struct ProgressJSONTests {
    @Test("progress lines parse, grow, and end with the summary")
    func lines() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = 3 << 20
        try TransferFixtures.share("slow.bin", size: size, peer: "seed", in: swarm)
        let seed = try swarm.launch(["serve", "--upload-rate", "1M"], name: "seed")
        _ = try await seed.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        let get = try swarm.launch(["get", "slow.bin", "--progress", "json"], name: "fetch")
        let status = try await get.waitForExit(timeout: .seconds(60))
        try? await get.waitForOutputToEnd(timeout: .seconds(5))
        #expect(status == 0, "\(get.transcript())")
        let objects = get.lines(.stdout).compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.text.utf8))) as? [String: Any]
        }
        #expect(objects.count == get.lineCount(.stdout), "every line is JSON: \(get.transcript())")
        let progress = objects.filter { $0["type"] as? String == "progress" }
        #expect(progress.count >= 2, "\(get.transcript())")
        let bytes = progress.compactMap { $0["bytes"] as? Int }
        #expect(bytes.count == progress.count)
        #expect(bytes == bytes.sorted())
        #expect(progress.allSatisfy { $0["size"] as? Int == size && $0["bytesPerSecond"] != nil && $0["peers"] != nil })
        let summary = try #require(objects.last)
        #expect(summary["type"] == nil)
        #expect(summary["size"] as? Int == size)
        #expect(summary["path"] is String)
        // One a second: no more lines than seconds the download took, and the first.
        let seconds = try #require(summary["seconds"] as? Double)
        #expect(progress.count <= Int(seconds) + 1, "\(progress.count) lines in \(seconds) s")
    }
}
