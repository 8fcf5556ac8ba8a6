import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Answers one connection's requests. The server frames; this decides.
public protocol TransferResponder: Sendable {
    /// Serves one connection until the remote closes it or breaks the protocol.
    /// - Parameters:
    ///   - inbound: the frames received.
    ///   - outbound: where answers go.
    ///   - remote: who is connected, for logs.
    ///   - channel: the connection itself, for writes that must know when their bytes are
    ///     on their way (`writeAndFlush` completes then; the outbound writer returns sooner).
    /// - Throws: on a protocol violation or I/O error; the server closes the connection.
    func serve(
        inbound: NIOAsyncChannelInboundStream<Frame>,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?,
        channel: any Channel
    ) async throws
}

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
        /// A connection that sends nothing for this long is closed (a stalled frame, a
        /// slow drip of bytes that never completes one, a forgotten socket).
        public var idleTimeout: TimeAmount
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

        /// Creates limits.
        public init(
            maximumConnections: Int = 256,
            maximumConnectionsPerAddress: Int = 32,
            idleTimeout: TimeAmount = .seconds(60),
            maximumRequestsInFlight: Int = Limits.defaultMaximumRequestsInFlight,
            maximumPushedBytes: Int64 = PushAllowance.defaultBytesPerInterval,
            pushInterval: Duration = PushAllowance.defaultInterval
        ) {
            self.maximumConnections = maximumConnections
            self.maximumConnectionsPerAddress = maximumConnectionsPerAddress
            self.idleTimeout = idleTimeout
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

    /// The port bound; what discovery announces.
    public let port: Int
    /// The limits in force.
    public let limits: Limits
    private let open = Mutex(OpenConnections())

    private struct OpenConnections {
        var total = 0
        var byAddress: [String: Int] = [:]
        /// Refusals not logged yet, and when the last line about them was.
        var refusedSinceLog = 0
        var lastRefusalLog: ContinuousClock.Instant? = nil
    }

    /// At most one line a second about refused connections, with how many there were: a
    /// flood of connections must not become a flood of log lines.
    private static let refusalLogInterval: Duration = .seconds(1)

    /// Yields accepted connections with their handlers in place but not yet wrapped for
    /// async use (see `bind`).
    private let listener: NIOAsyncChannel<any Channel, Never>
    private let responder: any TransferResponder
    private let logger: Logger

    private init(
        listener: NIOAsyncChannel<any Channel, Never>,
        responder: any TransferResponder,
        limits: Limits,
        logger: Logger
    ) {
        self.limits = limits
        self.listener = listener
        self.port = listener.channel.localAddress?.port ?? 0
        self.responder = responder
        self.logger = logger
    }

    /// Binds the transfer port.
    /// - Parameters:
    ///   - host: the local address.
    ///   - port: the port, 0 for any free one.
    ///   - maximumPayloadLength: the largest frame payload accepted.
    ///   - networkKey: the swarm's key: connections must authenticate with it.
    ///   - limits: connections allowed, the idle timeout, requests in flight.
    ///   - responder: what answers requests.
    ///   - group: the event loops.
    ///   - logger: where to log.
    /// - Returns: the bound server; call `run()` to accept connections.
    /// - Throws: `P2PError` with code `portUnavailable` if the port cannot be bound.
    public static func bind(
        host: String,
        port: Int,
        maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength,
        networkKey: NetworkKey? = nil,
        limits: Limits = Limits(),
        responder: any TransferResponder,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) async throws -> TransferServer {
        do {
            let listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(Self.notSentLowWatermark, value: Self.notSentLowWatermarkBytes)
                .childChannelOption(.recvAllocator, value: TransferConnection.receiveAllocator)
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
                        try channel.pipeline.syncOperations.addHandler(
                            IdleStateHandler(readTimeout: limits.idleTimeout)
                        )
                        try channel.pipeline.syncOperations.addHandler(CloseWhenIdle())
                        try TransferConnection.addHandlers(
                            to: channel,
                            maximumPayloadLength: maximumPayloadLength,
                            security: networkKey.map { .init(key: $0, isServer: true, logger: logger) },
                            requestLimit: limits.maximumRequestsInFlight
                        )
                        return channel
                    }
                }
            return TransferServer(listener: listener, responder: responder, limits: limits, logger: logger)
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
        let address = remote?.ipAddress ?? "?"
        let (admitted, refusedToLog) = self.open.withLock { open -> (Bool, Int) in
            guard open.total < self.limits.maximumConnections,
                open.byAddress[address, default: 0] < self.limits.maximumConnectionsPerAddress
            else {
                open.refusedSinceLog += 1
                let now = ContinuousClock.now
                if let last = open.lastRefusalLog, now - last < Self.refusalLogInterval { return (false, 0) }
                open.lastRefusalLog = now
                defer { open.refusedSinceLog = 0 }
                return (false, open.refusedSinceLog)
            }
            open.total += 1
            open.byAddress[address, default: 0] += 1
            return (true, 0)
        }
        guard admitted else {
            if refusedToLog > 0 {
                self.logger.info(
                    "refused transfer connections over the limit",
                    metadata: [
                        "connection.count": "\(refusedToLog)",
                        "peer.address": "\(address)",
                        "limits":
                            "\(self.limits.maximumConnections) in all, \(self.limits.maximumConnectionsPerAddress) per address",
                    ]
                )
            }
            try? await channel.close()
            return
        }
        defer {
            self.open.withLock { open in
                open.total -= 1
                open.byAddress[address, default: 1] -= 1
                if open.byAddress[address] == 0 { open.byAddress[address] = nil }
            }
        }
        do {
            let connection = try await channel.eventLoop.submit {
                let connection = try TransferConnection.wrap(channel, requestLimit: self.limits.maximumRequestsInFlight)
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

/// The channel set-up both ends of a transfer connection share.
public enum TransferConnection {
    /// What a connection of a keyed swarm needs: the key, which end it is, where to log
    /// refusals.
    public struct Security: Sendable {
        /// The swarm's key.
        public var key: NetworkKey
        /// Whether this end accepted the connection.
        public var isServer: Bool
        /// Where refused handshakes are logged.
        public var logger: Logger

        /// Creates the settings.
        public init(key: NetworkKey, isServer: Bool, logger: Logger) {
            self.key = key
            self.isServer = isServer
            self.logger = logger
        }
    }

    /// Reads of up to 1 MiB: a 256 KiB chunk frame then arrives in one or two reads
    /// rather than many of NIO's default 64 KiB, which saves decode passes and copies.
    public static let receiveAllocator = AdaptiveRecvByteBufferAllocator(
        minimum: 64 * 1024,
        initial: 256 * 1024,
        maximum: 1024 * 1024
    )

    /// Adds the frame codec and wraps the channel for async use.
    /// - Parameters:
    ///   - channel: a connected TCP channel, on its event loop.
    ///   - maximumPayloadLength: the largest frame payload accepted.
    ///   - security: the key and role, for a keyed swarm.
    ///   - requestLimit: for a served connection, the requests that may wait for an
    ///     answer (`RequestGate`); `nil` for a client's connection.
    /// - Returns: the async channel of frames.
    /// - Throws: if the pipeline cannot be set up.
    public static func configure(
        _ channel: any Channel,
        maximumPayloadLength: Int,
        security: Security? = nil,
        requestLimit: Int? = nil
    ) throws -> NIOAsyncChannel<Frame, Frame> {
        try self.addHandlers(
            to: channel,
            maximumPayloadLength: maximumPayloadLength,
            security: security,
            requestLimit: requestLimit
        )
        return try self.wrap(channel, requestLimit: requestLimit)
    }

    /// Adds the frame codec (and, for a keyed swarm, the secure channel; for a served
    /// connection, the request gate): the first half of `configure`.
    static func addHandlers(
        to channel: any Channel,
        maximumPayloadLength: Int,
        security: Security?,
        requestLimit: Int?
    ) throws {
        try channel.pipeline.syncOperations.addHandler(
            // Opening a sealed frame writes its plaintext into a new buffer: the decoder
            // need not copy the sealed payload out of the receive buffer first. Chunks
            // are placed where a direct write can take them (`ChunkBufferAllocator`).
            ByteToMessageHandler(
                FrameDecoder(
                    maximumPayloadLength: maximumPayloadLength,
                    copiesPayloads: security == nil,
                    largePayloadBuffer: ChunkBufferAllocator.buffer(exactCapacity:)
                )
            )
        )
        try channel.pipeline.syncOperations.addHandler(FrameEncoder())
        if let security {
            try channel.pipeline.syncOperations.addHandler(
                SecureChannelHandler(
                    key: security.key,
                    role: security.isServer ? .server : .client,
                    logger: security.logger
                )
            )
        }
        if let requestLimit {
            try channel.pipeline.syncOperations.addHandler(
                RequestGate(
                    maximumQueued: requestLimit,
                    maximumUnsentBytes: TransferServer.Limits.maximumUnsentAnswerBytes
                )
            )
        }
    }

    /// Wraps a channel whose handlers are in place for async use: the second half of
    /// `configure`. On the channel's event loop; the caller must run the result's
    /// `executeThenClose`.
    static func wrap(_ channel: any Channel, requestLimit: Int?) throws -> NIOAsyncChannel<Frame, Frame> {
        var configuration = NIOAsyncChannel<Frame, Frame>.Configuration(isOutboundHalfClosureEnabled: true)
        if requestLimit != nil {
            configuration.backPressureStrategy = RequestGate.asyncChannelBackPressure
        } else {
            // A client's receiver takes frames as they come; four waiting (1 MiB of
            // chunks) keep it fed, and a downloader with many peers holds four each.
            configuration.backPressureStrategy = .init(lowWatermark: 2, highWatermark: 4)
        }
        return try NIOAsyncChannel<Frame, Frame>(wrappingChannelSynchronously: channel, configuration: configuration)
    }
}

/// Closes a connection when `IdleStateHandler` says nothing was read for too long.
final class CloseWhenIdle: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@available(*, unavailable)
extension CloseWhenIdle: Sendable {}
