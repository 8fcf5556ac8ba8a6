import NIOCore

/// Everything a peer needs to know to run.
public struct PeerConfiguration: Sendable {
    /// The swarm's shared key (`--secret`): discovery datagrams are sealed with it and
    /// transfer connections authenticated and encrypted; `nil` for an open swarm.
    public var networkKey: NetworkKey?
    /// Discovery: ports, interval, interfaces, static peers.
    public var discovery: DiscoveryConfiguration
    /// Folders and the cache limit; `nil` for an observer, which stores nothing.
    public var storage: StorageConfiguration?
    /// Distribution: interval and rate.
    public var distribution: Distributor.Configuration
    /// Download tuning.
    public var download: Downloader.Configuration
    /// The TCP transfer port; 0 for any free one.
    public var transferPort: Int
    /// The local address the transfer listener binds to.
    public var bindHost: String
    /// The largest frame payload accepted on a transfer connection.
    public var maximumFramePayload: Int
    /// How often the share and downloads folders are looked at again for changes.
    public var rescanInterval: Duration
    /// Bytes per second served to others at most, over all connections; zero for no limit.
    public var uploadBytesPerSecond: Int64
    /// Connection limits, the idle timeout, requests in flight and the push allowance of
    /// the transfer server.
    public var limits: TransferServer.Limits
    /// Whether deliveries (`p2p send`) are taken, and within what quota and free space.
    public var delivery: DeliveryPolicy

    /// The default transfer port.
    public static let defaultTransferPort = 47475

    /// Whether this peer only observes the swarm (`p2p peers`, `p2p ls`): it serves no
    /// transfers and announces port zero, so others do not list it or ask it for data.
    public var isObserver: Bool { self.storage == nil }

    /// Creates a configuration.
    /// - Parameters:
    ///   - networkKey: the swarm's shared key, if any.
    ///   - discovery: discovery settings.
    ///   - storage: folders, or `nil` for an observer.
    ///   - distribution: distribution settings.
    ///   - download: download tuning.
    ///   - transferPort: the TCP transfer port, 0 for any.
    ///   - bindHost: the local address for the listener.
    ///   - maximumFramePayload: the largest frame payload accepted.
    ///   - rescanInterval: how often to look at the folders again.
    ///   - uploadBytesPerSecond: the most bytes per second served, zero for no limit.
    ///   - limits: connection limits and the idle timeout.
    ///   - delivery: whether deliveries are taken, and within what.
    public init(
        networkKey: NetworkKey? = nil,
        discovery: DiscoveryConfiguration = DiscoveryConfiguration(),
        storage: StorageConfiguration?,
        distribution: Distributor.Configuration = Distributor.Configuration(),
        download: Downloader.Configuration = Downloader.Configuration(),
        transferPort: Int = PeerConfiguration.defaultTransferPort,
        bindHost: String = "0.0.0.0",
        maximumFramePayload: Int = Frame.defaultMaximumPayloadLength,
        rescanInterval: Duration = .seconds(2),
        uploadBytesPerSecond: Int64 = 0,
        limits: TransferServer.Limits = TransferServer.Limits(),
        delivery: DeliveryPolicy = DeliveryPolicy()
    ) {
        self.networkKey = networkKey
        self.discovery = discovery
        self.storage = storage
        self.distribution = distribution
        self.download = download
        self.transferPort = transferPort
        self.bindHost = bindHost
        self.maximumFramePayload = maximumFramePayload
        self.rescanInterval = rescanInterval
        self.uploadBytesPerSecond = uploadBytesPerSecond
        self.limits = limits
        self.delivery = delivery
    }
}
