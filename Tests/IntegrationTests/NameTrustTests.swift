import Foundation
import Testing

/// `p2p get NAME` hands back the swarm's file of that name or fails saying why: never a
/// different local file of the name, never a file under another name than asked.
@Suite("Names a download can trust", .serialized, .timeLimit(.minutes(3)))
struct NameTrustTests {
    @Test("an unrelated local file of the name is neither reported as the download nor overwritten unasked")
    func localFileOfTheSameName() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let data = try TransferFixtures.share("f.bin", size: 1 << 20, peer: "seed", in: swarm)
        let local = TransferFixtures.downloaded("f.bin", peer: "fetch", in: swarm)
        try FileManager.default.createDirectory(
            at: local.deletingLastPathComponent(),
            withIntermediateDirectories: true
        )
        let old = Data("an unrelated file of 31 bytes..".utf8)
        try old.write(to: local)
        _ = try swarm.launch(["serve"], name: "seed")

        let (status, summary, process) = try await TransferFixtures.get("f.bin", as: "fetch", in: swarm)
        #expect(status != 0)
        #expect(summary == nil)
        let errors = process.lines(.stderr).map(\.text).filter { $0.hasPrefix("p2p:") }
        #expect(errors.count == 1, "\(process.transcript())")
        let message = try #require(errors.first)
        #expect(message.contains("--replace"))
        // Both files are named by id: the one here and the swarm's.
        #expect(message.components(separatedBy: "id ").count == 3, "\(message)")
        #expect(try Data(contentsOf: local) == old)

        let (replaced, second, again) = try await TransferFixtures.get(
            "f.bin",
            as: "fetch",
            in: swarm,
            extra: ["--replace"]
        )
        #expect(replaced == 0, "\(again.transcript())")
        #expect(second?.size == data.count)
        #expect(TransferFixtures.sha256(of: local) == TransferFixtures.sha256(data))
    }

    @Test("a file whose manifest names it otherwise than the inventory is refused, and nothing is written")
    func manifestNameUnlikeInventory() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        try TransferFixtures.share("other.bin", size: 300_000, peer: "liar", in: swarm)
        try await LyingPeer.with(
            storage: TransferFixtures.storage(of: "liar", in: swarm),
            lie: .renamedInInventory,
            in: swarm
        ) { _ in
            let (status, _, process) = try await TransferFixtures.get(
                "good.bin",
                as: "fetch",
                in: swarm,
                extra: ["--timeout", "10"]
            )
            #expect(status != 0)
            let errors = process.lines(.stderr).map(\.text).filter { $0.hasPrefix("p2p:") }
            #expect(errors.count == 1 && errors[0].contains("named 'other.bin'"), "\(process.transcript())")
            let downloads = swarm.directory.appendingPathComponent("fetch/downloads")
            let written = (try? FileManager.default.contentsOfDirectory(atPath: downloads.path)) ?? []
            #expect(written.filter { !$0.hasPrefix(".") }.isEmpty, "\(written)")
        }
    }
}
