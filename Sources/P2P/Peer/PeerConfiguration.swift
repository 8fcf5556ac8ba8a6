import NIOCore

/// Everything a peer needs to know to run.
public struct PeerConfiguration: Sendable {
    /// Discovery: ports, interval, interfaces, static peers.
    public var discovery: DiscoveryConfiguration
    /// The TCP transfer port; 0 for any free one.
    public var transferPort: Int
    /// The local address the transfer listener binds to.
    public var bindHost: String
    /// Whether this peer only observes the swarm (`p2p peers`, `p2p ls`): it serves no
    /// transfers and announces port zero, so others do not list it or ask it for data.
    public var isObserver: Bool
    /// The largest frame payload accepted on a transfer connection.
    public var maximumFramePayload: Int

    /// The default transfer port.
    public static let defaultTransferPort = 47475

    /// Creates a configuration.
    /// - Parameters:
    ///   - discovery: discovery settings.
    ///   - transferPort: the TCP transfer port, 0 for any.
    ///   - bindHost: the local address for the listener.
    ///   - isObserver: whether the peer only observes.
    ///   - maximumFramePayload: the largest frame payload accepted.
    public init(
        discovery: DiscoveryConfiguration = DiscoveryConfiguration(),
        transferPort: Int = PeerConfiguration.defaultTransferPort,
        bindHost: String = "0.0.0.0",
        isObserver: Bool = false,
        maximumFramePayload: Int = Frame.defaultMaximumPayloadLength
    ) {
        self.discovery = discovery
        self.transferPort = transferPort
        self.bindHost = bindHost
        self.isObserver = isObserver
        self.maximumFramePayload = maximumFramePayload
    }
}
