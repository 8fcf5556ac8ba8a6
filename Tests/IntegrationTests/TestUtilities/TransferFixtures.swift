import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import P2P
import _NIOFileSystem

/// Files, downloads and summaries for transfer tests.
enum TransferFixtures {
    /// Deterministic pseudo-random bytes (xorshift), so each test's data is reproducible.
    static func bytes(_ size: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBytes { raw in
            var index = 0
            while index < size {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                var word = state
                let count = min(8, size - index)
                withUnsafeBytes(of: &word) {
                    raw.baseAddress!.advanced(by: index).copyMemory(from: $0.baseAddress!, byteCount: count)
                }
                index += count
            }
        }
        return bytes
    }

    /// Writes `bytes` as `name` into a peer's share folder in the swarm.
    @discardableResult
    static func share(_ name: String, size: Int, seed: UInt64 = 1, peer: String, in swarm: TestSwarm) throws -> [UInt8]
    {
        let data = Self.bytes(size, seed: seed)
        let folder = try swarm.workingDirectory(for: peer).appendingPathComponent("shared")
        try Data(data).write(to: folder.appendingPathComponent(name))
        return data
    }

    /// The SHA-256 of a file, in hex; `nil` if it does not exist.
    static func sha256(of url: URL) -> String? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The SHA-256 of bytes, in hex.
    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// A downloaded file's URL in a peer's folder.
    static func downloaded(_ name: String, peer: String, in swarm: TestSwarm) -> URL {
        swarm.directory.appendingPathComponent(peer).appendingPathComponent("downloads").appendingPathComponent(name)
    }

    /// The partial files of downloads in progress or kept in a peer's downloads folder
    /// (`.p2p-partials/ID.partial`).
    static func partials(peer: String, in swarm: TestSwarm) -> [URL] {
        Self.partials(in: Self.downloaded(".p2p-partials", peer: peer, in: swarm).deletingLastPathComponent())
    }

    /// The partial files in a downloads folder.
    static func partials(in downloads: URL) -> [URL] {
        let folder = downloads.appendingPathComponent(".p2p-partials")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".partial") }.sorted().map { folder.appendingPathComponent($0) }
    }

    /// What `p2p get --json` printed.
    struct Summary {
        var name: String
        var id: String
        var size: Int
        var path: String
        var bytesFromPeers: [String: Int]
        var chunksAlreadyHeld: Int
    }

    /// Runs `p2p get NAME --json` as peer `name` and waits for it to exit.
    /// - Returns: the exit status, the summary if it printed one, and the process.
    static func get(
        _ file: String,
        as name: String,
        in swarm: TestSwarm,
        extra: [String] = [],
        timeout: Duration = .seconds(60)
    ) async throws -> (status: Int32, summary: Summary?, process: PeerProcess) {
        let process = try swarm.launch(["get", file, "--json"] + extra, name: name)
        let status = try await process.waitForExit(timeout: timeout)
        try? await process.waitForOutputToEnd(timeout: .seconds(5))
        let summary = process.lines(.stdout).compactMap { Self.parse($0.text) }.first
        return (status, summary, process)
    }

    static func parse(_ line: String) -> Summary? {
        guard let data = line.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let name = object["name"] as? String, let id = object["id"] as? String,
            let size = object["size"] as? Int, let path = object["path"] as? String,
            let peers = object["bytesFromPeers"] as? [String: Int],
            let held = object["chunksAlreadyHeld"] as? Int
        else { return nil }
        return Summary(name: name, id: id, size: size, path: path, bytesFromPeers: peers, chunksAlreadyHeld: held)
    }

    /// The storage configuration of a peer's folder in the swarm, for preparing its
    /// state with the library before the process starts.
    static func storage(of peer: String, in swarm: TestSwarm) throws -> StorageConfiguration {
        let folder = try swarm.workingDirectory(for: peer)
        return StorageConfiguration(
            shareDirectory: FilePath(folder.appendingPathComponent("shared").path),
            downloadsDirectory: FilePath(folder.appendingPathComponent("downloads").path),
            stateDirectory: FilePath(folder.appendingPathComponent(".p2p").path)
        )
    }

    /// Peak resident memory of a running process, in bytes (VmHWM).
    static func peakRSS(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.split(separator: " ").compactMap { Int($0) }.first
            return digits.map { $0 * 1024 }
        }
        return nil
    }

    static let logger = Logger(label: "p2p-integration")
}
