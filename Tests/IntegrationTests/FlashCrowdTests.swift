import Foundation
import P2P
import Testing

/// Many peers downloading one file from one seeder at once (SPEC §7): the seeder hands
/// each chunk out about once and the downloaders relay it among themselves.
@Suite("Flash crowd between p2p processes", .timeLimit(.minutes(3)))
struct FlashCrowdTests {
    static let chunk = 262_144

    @Test("four downloaders starting together all get the file; the seeder sends each chunk about once")
    func crowd() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = 40 * Self.chunk + 1234
        let data = try TransferFixtures.share("crowd.bin", size: size, peer: "seed", in: swarm)
        // A slow seeder, so that sending everything to everyone would show: 4 × 10 MiB at
        // 8 MiB/s is five seconds, relaying makes it about one.
        let seed = try swarm.launch(["serve", "--upload-rate", "8M"], name: "seed")
        let ready = try await seed.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        let seedID = try #require(Self.shortID(in: ready.line.text))
        let names = (1...4).map { "crowd\($0)" }
        let downloaders = try names.map { name in
            try swarm.launch(["get", "crowd.bin", "--json", "--seed", "--timeout", "60"], name: name)
        }
        var summaries: [TransferFixtures.Summary] = []
        for downloader in downloaders {
            let line = try await downloader.waitForLine(
                in: .stdout,
                matching: { TransferFixtures.parse($0) != nil },
                timeout: .seconds(90)
            )
            summaries.append(try #require(TransferFixtures.parse(line.line.text)))
        }
        for name in names {
            #expect(
                TransferFixtures.sha256(of: TransferFixtures.downloaded("crowd.bin", peer: name, in: swarm))
                    == TransferFixtures.sha256(data),
                "\(name) has a different file"
            )
        }
        let fromSeeder = summaries.reduce(0) { total, summary in
            total + summary.bytesFromPeers.filter { $0.key.hasPrefix(seedID) }.values.reduce(0, +)
        }
        let fromOthers = summaries.reduce(0) { $0 + $1.bytesFromPeers.values.reduce(0, +) } - fromSeeder
        // Each chunk once, and some slack for chunks fetched again after a relay came late.
        #expect(fromSeeder <= size * 3 / 2, "the seeder sent \(Double(fromSeeder) / Double(size)) copies")
        #expect(fromOthers >= size * 2, "the downloaders relayed only \(fromOthers) bytes")
        for downloader in downloaders { downloader.terminate() }
    }

    /// The 12-digit peer id in a log line's `peer.id=` field.
    static func shortID(in line: String) -> String? {
        guard let range = line.range(of: "peer.id=") else { return nil }
        let id = line[range.upperBound...].prefix { $0.isHexDigit }
        return id.isEmpty ? nil : String(id)
    }
}
