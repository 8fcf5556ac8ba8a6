import Foundation
import Synchronization

/// What one test starts: a fresh folder, a fresh discovery port, and the `p2p` processes,
/// which are all killed (by PID) and the folder removed by `shutdown()`.
///
/// Peers started here outside a namespace always run with `--interface lo`: the machine's
/// other interfaces lead outside, and test traffic never goes there.
final class TestSwarm: Sendable {
    /// The test's own folder; each peer works in a subfolder of it.
    let directory: URL
    /// The swarm's discovery port.
    let discoveryPort: Int
    /// Seconds between `alive` announcements.
    let announceInterval: Double

    private let processes = Mutex<[PeerProcess]>([])
    private let nextNumber = Mutex(1)

    /// Makes the folder and picks the port.
    /// - Parameters:
    ///   - announceInterval: `--announce-interval` for every peer.
    ///   - discoveryPort: the discovery port; a free one by default.
    /// - Throws: if the folder cannot be made or no port is free.
    init(announceInterval: Double = 0.5, discoveryPort: Int? = nil) throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("p2p-integration-\(UUID().uuidString.prefix(8).lowercased())", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.discoveryPort = try discoveryPort ?? FreePort.udp()
        self.announceInterval = announceInterval
    }

    deinit {
        self.shutdown()
    }

    /// Kills every process still running and removes the folder.
    func shutdown() {
        let all = self.processes.withLock { processes in
            defer { processes.removeAll() }
            return processes
        }
        for process in all {
            process.kill()
            process.closeStandardInput()
        }
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// A fresh name: `peer1`, `peer2`, ...
    func nextName(_ prefix: String = "peer") -> String {
        self.nextNumber.withLock { number in
            defer { number += 1 }
            return "\(prefix)\(number)"
        }
    }

    /// The options every peer of this swarm gets, with folders inside its working folder.
    /// - Parameters:
    ///   - interface: `--interface`; `lo` unless inside a testbed host.
    ///   - logLevel: `--log-level`.
    ///   - transferPort: `--port`; 0 for any free port.
    func commonOptions(interface: String = "lo", logLevel: String = "info", transferPort: Int = 0) -> [String] {
        [
            "--discovery-port", "\(self.discoveryPort)",
            "--port", "\(transferPort)",
            "--interface", interface,
            "--announce-interval", "\(self.announceInterval)",
            "--log-level", logLevel,
            "--share", "shared",
            "--downloads", "downloads",
            "--state", ".p2p",
        ]
    }

    /// Makes a peer's working folder with its share, downloads and state folders.
    func workingDirectory(for name: String) throws -> URL {
        let folder = self.directory.appendingPathComponent(name, isDirectory: true)
        for sub in ["shared", "downloads", ".p2p"] {
            try FileManager.default.createDirectory(
                at: folder.appendingPathComponent(sub, isDirectory: true),
                withIntermediateDirectories: true
            )
        }
        return folder
    }

    /// Starts `p2p` on loopback.
    /// - Parameters:
    ///   - arguments: the subcommand and its own arguments, such as `["serve"]`; the common
    ///     options are appended unless `withCommonOptions` is false.
    ///   - name: a name for messages and the working folder.
    ///   - logLevel: `--log-level`.
    ///   - transferPort: `--port`.
    ///   - withCommonOptions: whether to append the swarm's options.
    /// - Returns: the process.
    func launch(
        _ arguments: [String],
        name: String? = nil,
        logLevel: String = "info",
        transferPort: Int = 0,
        withCommonOptions: Bool = true
    ) throws -> PeerProcess {
        let name = name ?? self.nextName()
        let options = withCommonOptions ? self.commonOptions(logLevel: logLevel, transferPort: transferPort) : []
        return try self.launch(
            executable: P2PBinary.url(),
            arguments: arguments + options,
            name: name
        )
    }

    /// Starts any program in a fresh working folder and keeps it for `shutdown()`.
    func launch(executable: URL, arguments: [String], name: String) throws -> PeerProcess {
        let process = try PeerProcess(
            name: name,
            executable: executable,
            arguments: arguments,
            workingDirectory: self.workingDirectory(for: name)
        )
        self.processes.withLock { $0.append(process) }
        return process
    }

    /// Starts `p2p shell` on loopback and waits for its first line.
    /// - Parameters:
    ///   - name: a name for messages.
    ///   - logLevel: `--log-level`.
    ///   - timeout: how long to wait for the first line.
    /// - Returns: the running shell.
    func launchShell(
        name: String? = nil,
        logLevel: String = "info",
        timeout: Duration = .seconds(10)
    ) async throws
        -> ShellPeer
    {
        try await ShellPeer(process: self.launch(["shell"], name: name, logLevel: logLevel), timeout: timeout)
    }

    /// Starts several shells at once and waits for each one's first line.
    func launchShells(_ count: Int, logLevel: String = "info") async throws -> [ShellPeer] {
        let processes = try (0..<count).map { _ in try self.launch(["shell"], logLevel: logLevel) }
        var shells: [ShellPeer] = []
        for process in processes {
            shells.append(try await ShellPeer(process: process, timeout: .seconds(10)))
        }
        return shells
    }
}
