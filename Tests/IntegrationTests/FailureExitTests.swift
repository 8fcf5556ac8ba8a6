import Foundation
import P2P
import Testing

/// A command that fails ends with its one line and exit 1, whatever state it ran from:
/// every file it opened is closed on the way out (NIO treats a handle dropped open as a
/// fatal error, which would print a stack dump and exit 132).
@Suite("Failing commands end cleanly", .serialized, .timeLimit(.minutes(2)))
struct FailureExitTests {
    @Test("a failing get from a state folder with cached chunks exits 1 with one line, no crash")
    func failingGetWithCachedChunks() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        // Put a pushed chunk in the downloader's cache, as distribution from any peer would.
        try TransferFixtures.share("pushed.bin", size: 300_000, peer: "origin", in: swarm)
        let origin = try await ChunkStore.open(
            configuration: TransferFixtures.storage(of: "origin", in: swarm),
            logger: TransferFixtures.logger
        )
        let cache = try await ChunkStore.open(
            configuration: TransferFixtures.storage(of: "fetch", in: swarm),
            logger: TransferFixtures.logger
        )
        let id = try #require(await origin.inventory().first?.id)
        let manifest = try #require(await origin.manifest(for: id))
        let chunk = try #require(try await origin.readChunk(id, index: 0))
        #expect(await cache.storePushed(chunk, chunk: 0, of: manifest) == .stored)
        await cache.close()
        await origin.close()

        let (status, _, process) = try await TransferFixtures.get(
            "nobody-has-this.bin",
            as: "fetch",
            in: swarm,
            extra: ["--timeout", "1"]
        )
        #expect(status == 1, "\(process.transcript())")
        let stderr = process.lines(.stderr).map(\.text)
        #expect(stderr.filter { $0.hasPrefix("p2p:") }.count == 1, "\(process.transcript())")
        #expect(!stderr.contains { $0.contains("Fatal error") }, "\(process.transcript())")
    }
}
