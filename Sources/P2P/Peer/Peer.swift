import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// One peer of the swarm (the seed's `Peer`): discovery and the transfer server, started
/// together and stopped together. The command loop lives in the CLI, not here.
///
/// `prepare()` binds every socket first, so that a port in use is reported as one clear
/// error before anything runs; `run()` then serves until graceful shutdown.
public final class Peer: Service, Sendable {
    /// This peer's id for this run.
    public let id: PeerID
    /// The peers discovery has found.
    public let table: PeerTable
    /// The configuration.
    public let configuration: PeerConfiguration

    private let group: any EventLoopGroup
    private let logger: Logger
    private let responder: any TransferResponder
    private let prepared = Mutex<Prepared?>(nil)

    private struct Prepared: Sendable {
        var server: TransferServer?
        var discovery: PeerDiscovery
        var discoverySocket: DatagramSocket
    }

    /// Creates a peer; nothing is bound until `prepare()` or `run()`.
    /// - Parameters:
    ///   - configuration: what to run.
    ///   - responder: what answers transfer requests.
    ///   - id: the peer id, random by default.
    ///   - group: the event loops.
    ///   - logger: where to log.
    public init(
        configuration: PeerConfiguration,
        responder: any TransferResponder,
        id: PeerID = .random(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.id = id
        self.table = PeerTable()
        self.configuration = configuration
        self.responder = responder
        self.group = group
        var logger = logger
        logger[metadataKey: "peer.id"] = "\(id.short)"
        self.logger = logger
    }

    /// The transfer port bound, once prepared; zero for an observer.
    public var transferPort: Int {
        self.prepared.withLock { $0?.server?.port ?? 0 }
    }

    /// Discovery's counters, once prepared.
    public var discoveryStatistics: PeerDiscovery.Statistics? {
        self.prepared.withLock { $0?.discovery.statistics }
    }

    /// Binds the transfer port and the discovery port.
    /// - Throws: `P2PError` (`portUnavailable`) naming the port that could not be bound.
    public func prepare() async throws {
        if self.prepared.withLock({ $0 != nil }) { return }
        var server: TransferServer? = nil
        if !self.configuration.isObserver {
            server = try await TransferServer.bind(
                host: self.configuration.bindHost,
                port: self.configuration.transferPort,
                maximumPayloadLength: self.configuration.maximumFramePayload,
                responder: self.responder,
                group: self.group,
                logger: self.logger
            )
        }
        let discovery = PeerDiscovery(
            peerID: self.id,
            transferPort: server?.port ?? 0,
            configuration: self.configuration.discovery,
            table: self.table,
            group: self.group,
            logger: self.logger
        )
        let socket = try await discovery.bindSharedSocket()
        self.prepared.withLock { $0 = Prepared(server: server, discovery: discovery, discoverySocket: socket) }
        self.logger.info(
            "peer ready",
            metadata: [
                "transfer.port": "\(server?.port ?? 0)",
                "discovery.port": "\(self.configuration.discovery.port)",
            ]
        )
    }

    /// Runs discovery and the transfer server until graceful shutdown or cancellation.
    /// - Throws: `P2PError` if a port cannot be bound.
    public func run() async throws {
        try await self.prepare()
        guard let prepared = self.prepared.withLock({ $0 }) else { return }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await prepared.discovery.run(sharedSocket: prepared.discoverySocket) }
            if let server = prepared.server {
                group.addTask { try await server.run() }
            }
        }
    }
}
