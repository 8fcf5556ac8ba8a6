import NIOCore

/// How discovery behaves.
public struct DiscoveryConfiguration: Sendable {
    /// The UDP port every peer of a swarm listens on for broadcasts.
    public var port: Int
    /// How often a peer says it is alive; others drop it after three silent intervals.
    public var announceInterval: TimeAmount
    /// Interfaces to broadcast on and listen to; empty means all. `["lo"]` keeps
    /// discovery on this host.
    public var interfaceNames: [String]
    /// Discovery addresses of peers that broadcast cannot reach (`--peer HOST:PORT`);
    /// announcements go to each of them by unicast.
    public var staticPeers: [SocketAddress]
    /// The local address the sockets bind to.
    public var bindHost: String
    /// This peer's device name, carried in every announcement; `nil` for none.
    public var name: PeerName?
    /// The seed of the randomness that jitters announcements and spreads answers; `nil`
    /// for a seed from the system. A fixed seed makes the timing repeatable in tests.
    public var randomSeed: UInt64?

    /// The default discovery port.
    public static let defaultPort = 47474
    /// The default announce interval.
    public static let defaultAnnounceInterval = TimeAmount.seconds(2)

    /// Creates a configuration.
    /// - Parameters:
    ///   - port: the shared discovery port.
    ///   - announceInterval: how often to say alive.
    ///   - interfaceNames: interfaces to use, empty for all.
    ///   - staticPeers: discovery addresses to announce to by unicast.
    ///   - bindHost: the local address to bind.
    ///   - name: the device name to announce.
    ///   - randomSeed: the seed of the timing's randomness, `nil` for one from the system.
    public init(
        port: Int = DiscoveryConfiguration.defaultPort,
        announceInterval: TimeAmount = DiscoveryConfiguration.defaultAnnounceInterval,
        interfaceNames: [String] = [],
        staticPeers: [SocketAddress] = [],
        bindHost: String = "0.0.0.0",
        name: PeerName? = nil,
        randomSeed: UInt64? = nil
    ) {
        self.port = port
        self.announceInterval = announceInterval
        self.interfaceNames = interfaceNames
        self.staticPeers = staticPeers
        self.bindHost = bindHost
        self.name = name
        self.randomSeed = randomSeed
    }
}
