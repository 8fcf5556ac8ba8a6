import Foundation

/// The multi-host testbed of SPEC §9, through `scripts/testbed.sh`: a bridge and one
/// network namespace per host (`NAME-h1` … with eth0 = 198.18.0.I/24).
///
/// It needs root and iproute2; `isAvailable` says whether it can be built here, and tests
/// that need it are enabled only then. Use `Testbed.with(hosts:)`, which always tears it
/// down.
final class Testbed: Sendable {
    /// Why a testbed command failed.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The testbed's name: NAME-br, NAME-h1 … NAME-hN.
    let name: String
    /// How many hosts, on both subnets.
    let hosts: Int
    /// How many of them are on the first subnet (198.18.0.0/24); the rest are on the
    /// second (198.18.1.0/24), behind a router that does not forward broadcasts.
    let firstSubnetHosts: Int

    /// The repository root, found from this file's path.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestUtilities
        .deletingLastPathComponent()  // IntegrationTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// The script.
    static let script = Testbed.repositoryRoot.appendingPathComponent("scripts/testbed.sh")

    /// Whether a testbed can be built here (`scripts/testbed.sh check`), asked once.
    static let isAvailable: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/bin/bash"),
            FileManager.default.fileExists(atPath: Testbed.script.path),
            Testbed.ipCommand != nil
        else { return false }
        let result = try? Testbed.runSynchronously(["check"], timeout: .seconds(60))
        return result?.status == 0
    }()

    /// `ip`, from iproute2.
    static let ipCommand: URL? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
        .map { URL(fileURLWithPath: $0) }

    private init(name: String, hosts: Int, firstSubnetHosts: Int) {
        self.name = name
        self.hosts = hosts
        self.firstSubnetHosts = firstSubnetHosts
    }

    /// A name no other testbed on this machine has: `it` and eight random characters
    /// (the script allows 10; `ip netns` names are machine-wide unless /run/netns is private).
    static func uniqueName() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return "it" + String((0..<8).map { _ in alphabet.randomElement()! })
    }

    /// Builds a testbed, runs `body`, and tears the testbed down whatever happens.
    /// - Parameters:
    ///   - hosts: how many hosts.
    ///   - rate: an egress limit per host, such as `100mbit`, or nil.
    ///   - secondSubnet: how many more hosts to put on a second subnet, behind a router.
    ///   - body: the test.
    /// - Returns: what `body` returns.
    static func with<Result>(
        hosts: Int,
        rate: String? = nil,
        secondSubnet: Int = 0,
        _ body: (Testbed) async throws -> Result
    ) async throws -> Result {
        let testbed = try await Self.up(name: Self.uniqueName(), hosts: hosts, rate: rate, secondSubnet: secondSubnet)
        let result: Result
        do {
            result = try await body(testbed)
        } catch {
            try? await testbed.down()
            throw error
        }
        try await testbed.down()
        return result
    }

    /// Builds a testbed: `scripts/testbed.sh up NAME N [--rate RATE] [--second-subnet M]`.
    /// - Throws: `Failure` with the script's output if it fails.
    static func up(name: String, hosts: Int, rate: String? = nil, secondSubnet: Int = 0) async throws -> Testbed {
        var arguments = ["up", name, "\(hosts)"]
        if let rate { arguments += ["--rate", rate] }
        if secondSubnet > 0 { arguments += ["--second-subnet", "\(secondSubnet)"] }
        try await Self.run(arguments, timeout: .seconds(120))
        return Testbed(name: name, hosts: hosts + secondSubnet, firstSubnetHosts: hosts)
    }

    /// Tears the testbed down: `scripts/testbed.sh down NAME` (kills what still runs in
    /// its hosts, removes namespaces, links and bridge).
    func down() async throws {
        try await Self.run(["down", self.name], timeout: .seconds(120))
    }

    /// Host `index`'s namespace.
    func namespace(host index: Int) -> String { "\(self.name)-h\(index)" }

    /// Host `index`'s address: 198.18.0.I on the first subnet, 198.18.1.J on the second.
    func address(host index: Int) -> String {
        index <= self.firstSubnetHosts ? "198.18.0.\(index)" : "198.18.1.\(index - self.firstSubnetHosts)"
    }

    /// Starts `p2p` inside host `index` with `--interface eth0` and the swarm's options.
    /// - Parameters:
    ///   - index: the host, 1...hosts.
    ///   - arguments: the subcommand and its arguments, such as `["shell"]`.
    ///   - swarm: the test's swarm (folder, discovery port, interval, cleanup).
    ///   - name: a name for messages.
    /// - Returns: the process; its PID is `p2p`'s, since `ip netns exec` execs it.
    func launch(
        host index: Int,
        _ arguments: [String],
        in swarm: TestSwarm,
        name: String? = nil,
        interface: String = "eth0"
    ) throws -> PeerProcess {
        precondition((1...self.hosts).contains(index), "no host \(index) in testbed \(self.name)")
        guard let ip = Self.ipCommand else { throw Failure(description: "ip (iproute2) not found") }
        return try swarm.launch(
            executable: ip,
            arguments: ["netns", "exec", self.namespace(host: index), P2PBinary.url().path] + arguments
                + swarm.commonOptions(interface: interface),
            name: name ?? "h\(index)"
        )
    }

    /// Runs a command (such as `ip rule ...`) inside host `index`'s namespace and waits
    /// for it: `scripts/testbed.sh exec NAME I CMD...`.
    /// - Throws: `Failure` with the command's output if it fails.
    func run(host index: Int, _ command: [String]) async throws {
        precondition((1...self.hosts).contains(index), "no host \(index) in testbed \(self.name)")
        try await Self.run(["exec", self.name, "\(index)"] + command, timeout: .seconds(20))
    }

    /// Makes host `index` neither send nor take datagrams to its subnet's broadcast
    /// address, as a saturated switch port drops them, while unicast (every transfer
    /// connection) goes on: a policy rule ahead of the local table blackholes the address.
    func dropBroadcasts(host index: Int) async throws {
        let broadcast = "198.18.0.255"
        try await self.run(host: index, ["ip", "rule", "add", "pref", "10", "to", broadcast, "blackhole"])
        try await self.run(host: index, ["ip", "rule", "add", "pref", "20", "table", "local"])
        try await self.run(host: index, ["ip", "rule", "del", "pref", "0", "table", "local"])
    }

    /// Starts `p2p shell` inside host `index` and waits for its first line.
    func launchShell(host index: Int, in swarm: TestSwarm) async throws -> ShellPeer {
        try await ShellPeer(process: self.launch(host: index, ["shell"], in: swarm), timeout: .seconds(10))
    }

    // MARK: Running the script

    @discardableResult
    private static func run(_ arguments: [String], timeout: Duration) async throws -> [String] {
        let process = try PeerProcess(
            name: "testbed.sh \(arguments.first ?? "")",
            executable: URL(fileURLWithPath: "/bin/bash"),
            arguments: [Self.script.path] + arguments,
            workingDirectory: Self.repositoryRoot
        )
        process.closeStandardInput()
        let status: Int32
        do {
            status = try await process.waitForExit(timeout: timeout)
        } catch {
            process.kill()
            throw error
        }
        try await process.waitForOutputToEnd(timeout: .seconds(5))
        guard status == 0 else {
            throw Failure(
                description: "testbed.sh \(arguments.joined(separator: " ")) failed (exit \(status)): "
                    + process.lines(.stderr).map(\.text).joined(separator: " | ")
            )
        }
        return process.lines(.stdout).map(\.text)
    }

    /// For `isAvailable`, which trait evaluation needs synchronously.
    private static func runSynchronously(
        _ arguments: [String],
        timeout: Duration
    ) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Self.script.path] + arguments
        process.standardInput = nil
        process.standardOutput = nil
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            usleep(10_000)
        }
        if process.isRunning {
            process.terminate()
            return (-1, "timed out")
        }
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, output)
    }
}
