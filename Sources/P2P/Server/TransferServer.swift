import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The TCP listener on the transfer port: one task per connection, each framed with a
/// hard maximum frame size. A connection that errs is closed alone and logged; everyone
/// else is served as before.
public final class TransferServer: Service, Sendable {
    /// Bounds on what connections may hold, so that no peer can exhaust this one.
    public struct Limits: Sendable {
        /// Connections open at once, from everyone.
        public var maximumConnections: Int
        /// Connections open at once from one address.
        public var maximumConnectionsPerAddress: Int
        /// A connection that in this long neither completes a frame nor takes any answer
        /// bytes is closed (a forgotten socket, a slow drip of bytes that never completes a
        /// frame, a client that reads none of its answers). A byte is not progress; a frame
        /// is (`ConnectionDeadlines`).
        public var idleTimeout: TimeAmount
        /// A frame not whole this long after its first byte closes its connection, however
        /// its bytes trickle in: no connection holds an unfinished frame for longer. At the
        /// default, 30 s, a 16 MiB frame needs 0.56 MB/s.
        public var frameTimeout: TimeAmount
        /// Bytes of unfinished frames all connections together may hold, beyond the first
        /// `unbudgetedFrameBytesPerConnection` of each; a connection whose frame would take
        /// more is closed (`UnfinishedFrameBudget`).
        public var unfinishedFrameBudget: Int
        /// Requests one connection may have waiting for an answer. Requests are answered
        /// one at a time, in order, and the next is taken only once less than
        /// `maximumUnsentAnswerBytes` of answers wait to be sent; once this many requests
        /// wait, the server stops reading the connection (TCP then holds the client back).
        /// So a client that pipelines without end, or never reads its answers, costs a
        /// bounded amount of memory: these requests (plus those that arrived in the same
        /// socket read) and a few answers. Downloaders keep at most 32 requests in flight.
        public var maximumRequestsInFlight: Int
        /// Bytes of pushes (chunks and the manifests sent with them) taken from one address
        /// at once, and again over every `pushInterval`; what is over is dropped, and a
        /// connection that goes on pushing is closed (`PushAllowance`). Zero takes none.
        public var maximumPushedBytes: Int64
        /// The time over which an address's push allowance refills.
        public var pushInterval: Duration

        /// The default of `maximumRequestsInFlight`: twice the largest window a downloader
        /// keeps, so that honest clients never wait on it.
        public static let defaultMaximumRequestsInFlight = 64
        /// Answer bytes of one connection waiting to be sent at which its next request is
        /// held back: a little over one 256 KiB chunk answer, so that the next chunk is read
        /// from disk while the last one is sent, and a client that reads nothing holds a few
        /// answers at most (`RequestGate`).
        public static let maximumUnsentAnswerBytes = 256 * 1024 + 64
        /// The largest frame payload a connection may send before it is established
        /// (authenticated, or without a key, its first frame whole): the handshake's hellos
        /// carry 32 bytes and a request a few dozen; nothing larger need come first.
        public static let openingPayloadLimit = 512
        /// Bytes of an unfinished frame each connection holds outside the shared budget:
        /// more than any request (a work request's bitmap is 8 KiB at most), so requests
        /// never wait on the budget.
        public static let unbudgetedFrameBytesPerConnection = 16 << 10
        /// The default of `unfinishedFrameBudget`: 64 MiB, 256 pushed 256 KiB chunks at once.
        public static let defaultUnfinishedFrameBudget = 64 << 20

        /// Creates limits.
        public init(
            maximumConnections: Int = 256,
            maximumConnectionsPerAddress: Int = 32,
            idleTimeout: TimeAmount = .seconds(60),
            frameTimeout: TimeAmount = .seconds(30),
            unfinishedFrameBudget: Int = Limits.defaultUnfinishedFrameBudget,
            maximumRequestsInFlight: Int = Limits.defaultMaximumRequestsInFlight,
            maximumPushedBytes: Int64 = PushAllowance.defaultBytesPerInterval,
            pushInterval: Duration = PushAllowance.defaultInterval
        ) {
            self.maximumConnections = maximumConnections
            self.maximumConnectionsPerAddress = maximumConnectionsPerAddress
            self.idleTimeout = idleTimeout
            self.frameTimeout = frameTimeout
            self.unfinishedFrameBudget = unfinishedFrameBudget
            self.maximumRequestsInFlight = maximumRequestsInFlight
            self.maximumPushedBytes = maximumPushedBytes
            self.pushInterval = pushInterval
        }
    }

    /// `TCP_NOTSENT_LOWAT`: the socket takes more only while less than this
    /// is waiting unsent in the kernel. Without it the kernel's send buffer grows to
    /// megabytes, and what this peer has queued for a slow link (answers, relayed chunks)
    /// hides there: the forwarding backlog a downloader watches (SPEC §7) would read
    /// empty while seconds of data wait, and on a shared uplink the queue would be first
    /// come, not fair. The congestion window, and with it the acknowledgements' pace, is
    /// untouched: only unsent bytes are bounded.
    static let notSentLowWatermark = ChannelOptions.Types.SocketOption(
        level: .tcp,
        name: NIOBSDSocket.Option(rawValue: CInt(TCP_NOTSENT_LOWAT))
    )
    static let notSentLowWatermarkBytes: SocketOptionValue = 128 * 1024

    /// What the server did with connections, for logs and tests.
    public struct ConnectionStatistics: Sendable, Equatable {
        /// Connections open now.
        public var open = 0
        /// Newcomers refused: their address held as many connections as it may.
        public var refused = 0
        /// Open connections closed to make room for newcomers when all were taken: those
        /// that had done least.
        public var shed = 0
        /// Connections closed because their unfinished frame would have gone over the
        /// shared budget.
        public var closedOverBudget = 0
        /// Bytes of unfinished frames taken from the shared budget now.
        public var unfinishedFrameBytes = 0
    }

    /// The port bound; what discovery announces.
    public let port: Int
    /// The limits in force.
    public let limits: Limits
    private let connections: ServedConnections

    /// What the server did with connections so far.
    public var connectionStatistics: ConnectionStatistics { self.connections.statistics }

    /// Yields accepted connections with their handlers in place but not yet wrapped for
    /// async use (see `bind`).
    private let listener: NIOAsyncChannel<any Channel, Never>
    private let responder: any TransferResponder
    private let logger: Logger

    private init(
        listener: NIOAsyncChannel<any Channel, Never>,
        responder: any TransferResponder,
        limits: Limits,
        connections: ServedConnections,
        logger: Logger
    ) {
        self.limits = limits
        self.connections = connections
        self.listener = listener
        self.port = listener.channel.localAddress?.port ?? 0
        self.responder = responder
        self.logger = logger
    }

    /// Binds the transfer port.
    /// - Parameters:
    ///   - host: the local address.
    ///   - port: the port, 0 for any free one.
    ///   - settings: the key connections must authenticate with, the largest frame
    ///     payload, the event loops, where to log.
    ///   - limits: connections allowed, the idle timeout, requests in flight.
    ///   - responder: what answers requests.
    /// - Returns: the bound server; call `run()` to accept connections.
    /// - Throws: `P2PError` with code `portUnavailable` if the port cannot be bound.
    public static func bind(
        host: String,
        port: Int,
        settings: TransferSettings,
        limits: Limits = Limits(),
        responder: any TransferResponder
    ) async throws -> TransferServer {
        let logger = settings.logger
        let connections = ServedConnections(limits: limits, logger: logger)
        do {
            let listener = try await ServerBootstrap(group: settings.group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(Self.notSentLowWatermark, value: Self.notSentLowWatermarkBytes)
                .childChannelOption(.recvAllocator, value: TransferConnection.servedReceiveAllocator)
                // Nothing is read until the task serving the connection has wrapped it.
                .childChannelOption(.autoRead, value: false)
                .bind(host: host, port: port) { channel in
                    // The handlers go in now, before any byte arrives, but the async
                    // wrapper is made by the task that serves the connection. A wrapper made
                    // here and still waiting in the accept stream when the server shuts down
                    // would be dropped unused, and NIO traps on a dropped writer
                    // (apple/swift-nio#2813): `p2p serve` died by SIGILL at SIGTERM. A raw
                    // channel left behind is only closed, by its idle timeout at the latest.
                    channel.eventLoop.makeCompletedFuture {
                        try TransferConnection.addHandlers(
                            to: channel,
                            maximumPayloadLength: settings.maximumPayloadLength,
                            security: settings.networkKey.map { .init(key: $0, isServer: true, logger: logger) },
                            served: .init(connections: connections, limits: limits)
                        )
                        return channel
                    }
                }
            return TransferServer(
                listener: listener,
                responder: responder,
                limits: limits,
                connections: connections,
                logger: logger
            )
        } catch {
            throw Self.bindError(error, port: port)
        }
    }

    /// What to tell the user when the transfer port cannot be bound, in words rather than
    /// the system call's.
    static func bindError(_ error: any Error, port: Int) -> P2PError {
        let errno = (error as? IOError)?.errnoCode
        if errno == EADDRINUSE {
            return P2PError(
                code: .portUnavailable,
                "transfer port \(port) is in use (another p2p on this host? use --port 0 for any free port)"
            )
        }
        let reason = errno.map { String(cString: strerror($0)) } ?? "\(error)"
        return P2PError(
            code: .portUnavailable,
            "cannot listen for transfers on TCP port \(port): \(reason) (choose another with --port, or --port 0 for any)"
        )
    }

    /// Accepts connections until graceful shutdown or cancellation.
    public func run() async throws {
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await self.listener.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await self.handle(connection) }
                    }
                }
            }
        } onCancelOrGracefulShutdown: {
            self.listener.channel.close(promise: nil)
        }
    }

    private func handle(_ channel: any Channel) async {
        let remote = channel.remoteAddress
        guard self.connections.admit(channel) else {
            try? await channel.close()
            return
        }
        defer { self.connections.remove(channel) }
        do {
            let connection = try await channel.eventLoop.submit {
                let connection = try TransferConnection.wrap(channel, isServed: true)
                // The async channel takes frames from here on: read as an active channel
                // does on its own, through the pipeline, so that the request gate hears the
                // async channel ask. (On a channel that closed meanwhile this fails:
                // `executeThenClose` ends it.)
                try? channel.syncOptions?.setOption(.autoRead, value: true)
                channel.read()
                return connection
            }.get()
            // Served on the connection's own event loop (see `EventLoopTaskExecutor`).
            try await withTaskExecutorPreference(EventLoopTaskExecutor(channel.eventLoop)) {
                try await connection.executeThenClose { inbound, outbound in
                    try await self.responder.serve(
                        inbound: inbound,
                        outbound: outbound,
                        remote: remote,
                        channel: channel
                    )
                }
            }
        } catch {
            self.logger.info(
                "closed a transfer connection",
                metadata: ["peer.address": "\(remote.map { "\($0)" } ?? "?")", "error": "\(error)"]
            )
        }
    }
}
