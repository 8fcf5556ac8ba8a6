import ArgumentParser
import Foundation
import Logging
import NIOCore
import P2P
import _NIOFileSystem

/// The options every command takes (SPEC §6).
struct CommonOptions: ParsableArguments {
    @Option(help: "UDP port the swarm's peers discover each other on.")
    var discoveryPort: Int = DiscoveryConfiguration.defaultPort

    @Option(help: "TCP port to serve transfers on (0 = any free port).")
    var port: Int = PeerConfiguration.defaultTransferPort

    @Option(help: "Folder whose files are offered to the swarm.")
    var share: String = "./shared"

    @Option(help: "Folder finished downloads are written to.")
    var downloads: String = "./downloads"

    @Option(help: "Folder for manifests, partial downloads and the chunk cache.")
    var state: String = "./.p2p"

    @Option(
        name: .customLong("peer"),
        help: ArgumentHelp(
            "Discovery address of a peer that broadcast cannot reach (repeatable).",
            valueName: "host:port"
        )
    )
    var peers: [String] = []

    @Option(
        name: .customLong("interface"),
        help: ArgumentHelp("Limit discovery to this interface (repeatable; 'lo' = this host only).", valueName: "name")
    )
    var interfaces: [String] = []

    @Option(
        help: ArgumentHelp("This peer's device name, shown to the others (default: the host name).", valueName: "name")
    )
    var name: String?

    @Option(help: "Seconds between 'alive' announcements; silent peers drop after three.")
    var announceInterval: Double = 2

    @Option(help: "Seconds between distribution rounds that push chunks to a random peer (0 = off).")
    var distributeInterval: Double = 10

    @Option(help: "Bytes per second distribution pushes at most (suffixes k, M, G: powers of 1024).")
    var distributeRate: ByteCountArgument = ByteCountArgument(Distributor.Configuration.defaultBytesPerSecond)

    @Option(help: "Most bytes of pushed chunks kept in the cache (suffixes k, M, G).")
    var cacheLimit: ByteCountArgument = ByteCountArgument(StorageConfiguration.defaultCacheLimit)

    @Option(help: "Bytes per second served to other peers at most (0 = no limit; suffixes k, M, G).")
    var uploadRate: ByteCountArgument = ByteCountArgument(0)

    @Option(
        help: ArgumentHelp(
            "Most other downloaders of a file each downloader relays with (0 = every other).",
            discussion: "A larger crowd relays along an overlay in which every chunk still reaches everyone."
        )
    )
    var relayPartners: Int = Downloader.Configuration().maximumRelayPartners

    @Option(help: "Transfer connections served at once, from all peers.")
    var maxConnections: Int = 256

    @Option(help: "Transfer connections served at once from one address.")
    var maxConnectionsPerPeer: Int = 32

    @Option(help: "Seconds a transfer connection may complete no frame (and take no answer bytes) before it is closed.")
    var idleTimeout: Double = 60

    @Option(help: "Requests one transfer connection may have waiting; at the limit the server stops reading it.")
    var maxRequestsInFlight: Int = TransferServer.Limits.defaultMaximumRequestsInFlight

    @Option(
        help:
            "Bytes of pushes taken from one address per --push-interval; more are dropped (0 = none; suffixes k, M, G)."
    )
    var maxPushBytes: ByteCountArgument = ByteCountArgument(PushAllowance.defaultBytesPerInterval)

    @Option(help: "Seconds over which an address's --max-push-bytes allowance refills.")
    var pushInterval: Double = 10

    @Option(
        help: ArgumentHelp(
            "Shared network key: only peers with the same key see and talk to each other (also: P2P_SECRET).",
            discussion: "Visible to other users in the process list; prefer --secret-file or P2P_SECRET.",
            valueName: "secret"
        )
    )
    var secret: String?

    @Option(help: ArgumentHelp("Read the shared network key from a file (first line).", valueName: "path"))
    var secretFile: String?

    @Option(
        help: ArgumentHelp(
            "Log level: trace, debug, info, notice, warning, error, critical.",
            discussion: "Default: info for 'serve' and wherever stderr is not a terminal; warning otherwise."
        )
    )
    var logLevel: Logger.Level?

    /// The log level in force: the one given, or the command's default. On a terminal the
    /// interactive and one-shot commands show warnings and errors only, so that log lines
    /// do not break into the prompt, the progress line or a table; a peer that serves in
    /// the background, and any command whose stderr goes to a file, log at info.
    func effectiveLogLevel(serving: Bool, onTerminal: Bool = isatty(STDERR_FILENO) == 1) -> Logger.Level {
        if let level = self.logLevel { return level }
        return serving || !onTerminal ? .info : .warning
    }

    func validate() throws {
        guard (1...65535).contains(self.discoveryPort) else {
            throw ValidationError("--discovery-port must be between 1 and 65535, not \(self.discoveryPort)")
        }
        guard (0...65535).contains(self.port) else {
            throw ValidationError("--port must be between 0 and 65535, not \(self.port)")
        }
        guard self.announceInterval >= 0.05 && self.announceInterval <= 3600 else {
            throw ValidationError("--announce-interval must be between 0.05 and 3600 seconds")
        }
        guard self.distributeInterval >= 0 && self.distributeInterval <= 86400 else {
            throw ValidationError("--distribute-interval must be between 0 and 86400 seconds")
        }
        for peer in self.peers {
            _ = try Self.parseHostPort(peer)
        }
        if let name = self.name, let problem = PeerName.problem(with: name) {
            throw ValidationError("refused --name '\(name)': \(problem)")
        }
        guard (0...1024).contains(self.relayPartners) else {
            throw ValidationError("--relay-partners must be between 0 and 1024, not \(self.relayPartners)")
        }
        guard self.maxConnections >= 1, self.maxConnectionsPerPeer >= 1 else {
            throw ValidationError("--max-connections and --max-connections-per-peer must be at least 1")
        }
        guard self.idleTimeout >= 1 && self.idleTimeout <= 86400 else {
            throw ValidationError("--idle-timeout must be between 1 and 86400 seconds")
        }
        guard (1...65536).contains(self.maxRequestsInFlight) else {
            throw ValidationError("--max-requests-in-flight must be between 1 and 65536")
        }
        guard self.pushInterval >= 0.001 && self.pushInterval <= 86400 else {
            throw ValidationError("--push-interval must be between 0.001 and 86400 seconds")
        }
        if self.secret != nil && self.secretFile != nil {
            throw ValidationError("give either --secret or --secret-file, not both")
        }
        // Only checked here: deriving the key is deliberately slow, and happens once, when
        // the peer is configured.
        if let secret = try self.secretText() {
            do {
                try NetworkKey.check(secret)
            } catch {
                throw ValidationError(error.message)
            }
        }
    }

    /// The discovery settings these options describe.
    func discoveryConfiguration() throws -> DiscoveryConfiguration {
        DiscoveryConfiguration(
            port: self.discoveryPort,
            announceInterval: .nanoseconds(Int64(self.announceInterval * 1_000_000_000)),
            interfaceNames: self.interfaces,
            staticPeers: try self.peers.map(Self.parseHostPort),
            name: try self.name.map { try PeerName($0) } ?? PeerName.fromHostName(Self.hostName())
        )
    }

    /// The swarm's key from --secret, --secret-file or P2P_SECRET, in that order. Runs the
    /// password KDF: call it once.
    func networkKey() throws -> NetworkKey? {
        guard let secret = try self.secretText() else { return nil }
        do {
            return try NetworkKey(secret: secret)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// The secret from --secret, --secret-file or P2P_SECRET, in that order, if any.
    func secretText() throws -> String? {
        var secret = self.secret
        if let path = self.secretFile {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("cannot read --secret-file \(path)")
            }
            secret = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        }
        if secret == nil, let environment = ProcessInfo.processInfo.environment["P2P_SECRET"], !environment.isEmpty {
            secret = environment
        }
        return secret
    }

    /// The peer settings these options describe.
    /// - Parameter observer: whether the peer only observes the swarm.
    func peerConfiguration(observer: Bool = false) throws -> PeerConfiguration {
        let storage = StorageConfiguration(
            shareDirectory: FilePath(self.share),
            downloadsDirectory: FilePath(self.downloads),
            stateDirectory: FilePath(self.state),
            cacheLimit: self.cacheLimit.bytes,
            // The default folders are made on first use; a folder the user named must exist.
            createShareDirectory: self.share == "./shared",
            createDownloadsDirectory: self.downloads == "./downloads"
        )
        var download = Downloader.Configuration()
        download.maximumRelayPartners = self.relayPartners
        return PeerConfiguration(
            networkKey: try self.networkKey(),
            discovery: try self.discoveryConfiguration(),
            storage: observer ? nil : storage,
            distribution: Distributor.Configuration(
                interval: .milliseconds(Int64(self.distributeInterval * 1000)),
                bytesPerSecond: self.distributeRate.bytes
            ),
            download: download,
            transferPort: observer ? 0 : self.port,
            uploadBytesPerSecond: self.uploadRate.bytes,
            limits: TransferServer.Limits(
                maximumConnections: self.maxConnections,
                maximumConnectionsPerAddress: self.maxConnectionsPerPeer,
                idleTimeout: .milliseconds(Int64(self.idleTimeout * 1000)),
                maximumRequestsInFlight: self.maxRequestsInFlight,
                maximumPushedBytes: self.maxPushBytes.bytes,
                pushInterval: .milliseconds(Int64(self.pushInterval * 1000))
            )
        )
    }

    /// This machine's host name, as `gethostname` gives it: no name service is asked, so
    /// a machine without DNS starts as fast as any.
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Parses and resolves `host:port`.
    static func parseHostPort(_ text: String) throws -> SocketAddress {
        guard let colon = text.lastIndex(of: ":"),
            let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        else {
            throw ValidationError(
                "--peer takes host:port, such as 192.168.1.20:\(DiscoveryConfiguration.defaultPort); got '\(text)'"
            )
        }
        let host = String(text[..<colon])
        do {
            return try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw ValidationError("--peer \(text): cannot resolve '\(host)'")
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A byte count on the command line: `1048576`, `512k`, `64M`, `2G` (powers of 1024).
struct ByteCountArgument: ExpressibleByArgument, Sendable {
    var bytes: Int64

    init(_ bytes: Int64) { self.bytes = bytes }

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        let units: [Character: Int64] = [
            "k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20, "g": 1 << 30, "G": 1 << 30,
        ]
        var digits = Substring(text)
        var multiplier: Int64 = 1
        if let last = text.last, let unit = units[last] {
            multiplier = unit
            digits = text.dropLast()
        }
        if digits.hasSuffix("i") || digits.hasSuffix("B") { return nil }
        guard let value = Double(digits), value >= 0, value * Double(multiplier) < 9e18 else { return nil }
        self.bytes = Int64(value * Double(multiplier))
    }

    var defaultValueDescription: String { Format.bytes(self.bytes) }
}
