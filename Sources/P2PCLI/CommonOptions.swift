import ArgumentParser
import Logging
import NIOCore
import P2P

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

    @Option(help: "Seconds between 'alive' announcements; silent peers drop after three.")
    var announceInterval: Double = 2

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

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
        for peer in self.peers {
            _ = try Self.parseHostPort(peer)
        }
    }

    /// The discovery settings these options describe.
    func discoveryConfiguration() throws -> DiscoveryConfiguration {
        DiscoveryConfiguration(
            port: self.discoveryPort,
            announceInterval: .nanoseconds(Int64(self.announceInterval * 1_000_000_000)),
            interfaceNames: self.interfaces,
            staticPeers: try self.peers.map(Self.parseHostPort)
        )
    }

    /// The peer settings these options describe.
    /// - Parameter observer: whether the peer only observes the swarm.
    func peerConfiguration(observer: Bool = false) throws -> PeerConfiguration {
        PeerConfiguration(
            discovery: try self.discoveryConfiguration(),
            transferPort: self.port,
            isObserver: observer
        )
    }

    /// Parses and resolves `host:port`.
    static func parseHostPort(_ text: String) throws -> SocketAddress {
        guard let colon = text.lastIndex(of: ":"),
            let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        else {
            throw ValidationError("--peer takes host:port, such as 192.168.1.20:\(DiscoveryConfiguration.defaultPort); got '\(text)'")
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
