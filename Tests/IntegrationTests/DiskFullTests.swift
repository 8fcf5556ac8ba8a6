import Foundation
import Testing

/// A download into a file system that fills up: a clear error, the `.partial` kept and
/// consistent, nothing else damaged. Needs root to mount a small tmpfs.
@Suite(
    "Disk full during a download",
    .timeLimit(.minutes(1)),
    .enabled(if: getuid() == 0, "needs root to mount a small tmpfs")
)
struct DiskFullTests {
    @Test("the download stops with one clear line; the .partial and its record stay; a later download resumes")
    func diskFull() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = 24 * 262_144
        let data = try TransferFixtures.share("big.bin", size: size, peer: "seed", in: swarm)
        _ = try swarm.launch(["serve"], name: "seed")
        // The downloader's downloads folder is a 2 MiB tmpfs: a third of the file fits.
        let downloads = try swarm.workingDirectory(for: "fetch").appendingPathComponent("downloads")
        try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", downloads.path])
        defer { try? Self.run("/bin/umount", [downloads.path]) }

        let (status, _, process) = try await TransferFixtures.get(
            "big.bin",
            as: "fetch",
            in: swarm,
            extra: ["--timeout", "30"]
        )
        #expect(status != 0)
        let errors = process.lines(.stderr).map(\.text).filter { $0.hasPrefix("p2p:") }
        #expect(errors.count == 1, "\(process.transcript())")
        #expect(errors.first?.contains("No space left") == true || errors.first?.contains("space") == true, "\(errors)")
        #expect(TransferFixtures.partials(in: downloads).count == 1)
        #expect(!FileManager.default.fileExists(atPath: downloads.appendingPathComponent("big.bin").path))

        // Room again (a bigger tmpfs over the same data): the next download resumes and
        // the result is byte-identical, so what was kept was consistent.
        try Self.run("/bin/mount", ["-o", "remount,size=16m", downloads.path])
        let (again, summary, second) = try await TransferFixtures.get("big.bin", as: "fetch", in: swarm)
        #expect(again == 0, "\(second.transcript())")
        #expect((summary?.chunksAlreadyHeld ?? 0) > 0)
        #expect(
            TransferFixtures.sha256(of: downloads.appendingPathComponent("big.bin")) == TransferFixtures.sha256(data)
        )
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PeerProcess.Failure(description: "\(tool) \(arguments.joined(separator: " ")) failed")
        }
    }
}
