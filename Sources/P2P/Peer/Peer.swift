import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// One peer of the swarm (the seed's `Peer`): storage, discovery, the transfer server and
/// distribution, started together and stopped together. The command loop lives in the
/// CLI, not here.
///
/// `Peer.start` opens the folders and binds every socket, so that a port in use or a
/// missing folder is one clear error before anything runs; `run()` then serves until
/// graceful shutdown.
public final class Peer: Service, Sendable {
    /// This peer's id for this run.
    public let id: PeerID
    /// The peers discovery has found.
    public let table: PeerTable
    /// The configuration.
    public let configuration: PeerConfiguration
    /// The chunks held here; `nil` for an observer.
    public let store: ChunkStore?
    /// What was served and pushed.
    public let statistics: TransferStatistics
    /// Takes deliveries (`serve --accept`); `nil` for an observer.
    public let deliveries: DeliveryReceiver?

    private let server: TransferServer?
    /// Where chunks a seeder hands this peer are forwarded to the other downloaders.
    private let relayHub: RelayHub
    private let discovery: PeerDiscovery
    private let discoverySocket: DatagramSocket
    /// The key, frame limit, event loops and logger every transfer connection is made with.
    let settings: TransferSettings

    private init(
        id: PeerID,
        table: PeerTable,
        configuration: PeerConfiguration,
        store: ChunkStore?,
        statistics: TransferStatistics,
        deliveries: DeliveryReceiver?,
        server: TransferServer?,
        relayHub: RelayHub,
        discovery: PeerDiscovery,
        discoverySocket: DatagramSocket,
        settings: TransferSettings
    ) {
        self.id = id
        self.table = table
        self.configuration = configuration
        self.store = store
        self.statistics = statistics
        self.deliveries = deliveries
        self.server = server
        self.relayHub = relayHub
        self.discovery = discovery
        self.discoverySocket = discoverySocket
        self.settings = settings
    }

    /// Opens the folders, hashes what is shared, and binds the transfer and discovery
    /// ports.
    /// - Parameters:
    ///   - configuration: what to run.
    ///   - id: the peer id, random by default.
    ///   - group: the event loops.
    ///   - logger: where to log.
    /// - Returns: a peer ready to `run()`.
    /// - Throws: `P2PError`: `badFolder` naming the folder, `portUnavailable` naming the port.
    public static func start(
        configuration: PeerConfiguration,
        id: PeerID = .random(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) async throws -> Peer {
        var logger = logger
        logger[metadataKey: "peer.id"] = "\(id.short)"
        let settings = TransferSettings(
            networkKey: configuration.networkKey,
            maximumPayloadLength: configuration.maximumFramePayload,
            group: group,
            logger: logger
        )
        let statistics = TransferStatistics()
        var store: ChunkStore? = nil
        var server: TransferServer? = nil
        var deliveries: DeliveryReceiver? = nil
        let relayHub = RelayHub(me: id)
        let table = PeerTable()
        if let storage = configuration.storage {
            let opened = try await ChunkStore.open(configuration: storage, logger: logger)
            store = opened
            let receiver = DeliveryReceiver(
                policy: configuration.delivery,
                me: id,
                key: configuration.networkKey,
                store: opened,
                downloader: Downloader(
                    store: opened,
                    table: table,
                    configuration: configuration.download,
                    settings: settings,
                    relayHub: relayHub,
                    statistics: statistics
                ),
                logger: logger
            )
            deliveries = receiver
            server = try await TransferServer.bind(
                host: configuration.bindHost,
                port: configuration.transferPort,
                settings: settings,
                limits: configuration.limits,
                responder: SwarmResponder(
                    store: opened,
                    statistics: statistics,
                    uploadLimiter: RateLimiter(bytesPerSecond: configuration.uploadBytesPerSecond),
                    pushAllowance: PushAllowance(
                        bytesPerInterval: configuration.limits.maximumPushedBytes,
                        interval: configuration.limits.pushInterval
                    ),
                    relayHub: relayHub,
                    connectBack: ConnectBackProbe(settings: settings),
                    deliveries: receiver,
                    logger: logger
                )
            )
        }
        let discovery = PeerDiscovery(
            peerID: id,
            transferPort: server?.port ?? 0,
            configuration: configuration.discovery,
            networkKey: configuration.networkKey,
            table: table,
            group: group,
            logger: logger
        )
        let socket = try await discovery.bindSharedSocket()
        logger.info(
            "peer ready",
            metadata: [
                "transfer.port": "\(server?.port ?? 0)",
                "discovery.port": "\(configuration.discovery.port)",
            ]
        )
        return Peer(
            id: id,
            table: table,
            configuration: configuration,
            store: store,
            statistics: statistics,
            deliveries: deliveries,
            server: server,
            relayHub: relayHub,
            discovery: discovery,
            discoverySocket: socket,
            settings: settings
        )
    }

    /// The transfer port bound; zero for an observer.
    public var transferPort: Int { self.server?.port ?? 0 }

    /// What the transfer server did with connections (refused, shed, over budget); zeros
    /// for an observer.
    public var connectionStatistics: TransferServer.ConnectionStatistics {
        self.server?.connectionStatistics ?? .init()
    }

    /// Discovery's counters.
    public var discoveryStatistics: PeerDiscovery.Statistics { self.discovery.statistics }

    /// A downloader over this peer's store and peer table.
    /// - Returns: the downloader, or `nil` for an observer.
    public func downloader() -> Downloader? {
        guard let store = self.store else { return nil }
        return Downloader(
            store: store,
            table: self.table,
            configuration: self.configuration.download,
            settings: self.settings,
            relayHub: self.relayHub,
            statistics: self.statistics
        )
    }

    /// The inventories of every serving peer, asked at once.
    public func swarmInventories() async -> [(KnownPeer, [InventoryEntry])] {
        await Downloader.inventories(
            of: self.table.servingPeers(),
            settings: self.settings
        )
    }

    /// The collection lists (shared folders) of the peers known now.
    public func swarmCollectionLists() async -> [(KnownPeer, [CollectionEntry])] {
        await Downloader.collectionLists(of: self.table.servingPeers(), settings: self.settings)
    }

    /// Runs discovery, the transfer server, distribution and the folder rescans until
    /// graceful shutdown or cancellation.
    public func run() async throws {
        // The store's files are closed on every way out: NIO treats a file handle dropped
        // open as a fatal error, and a failing service must end with a message, not a crash.
        do {
            try await self.runServices()
        } catch {
            await self.store?.close()
            throw error
        }
        await self.store?.close()
    }

    private func runServices() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.discovery.run(sharedSocket: self.discoverySocket) }
            if let server = self.server {
                group.addTask { try await server.run() }
            }
            if let store = self.store {
                group.addTask {
                    try await Distributor(
                        store: store,
                        table: self.table,
                        configuration: self.configuration.distribution,
                        statistics: self.statistics,
                        settings: self.settings
                    ).run()
                }
                group.addTask {
                    while await sleepUnlessShuttingDown(self.configuration.rescanInterval) {
                        await store.rescan()
                    }
                }
            }
        }
    }
}
