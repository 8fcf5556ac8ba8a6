import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The client end of one transfer connection: requests out, answers in, in order.
///
/// Used by one task at a time; `TransferClient.connect(to:…){ session in … }` opens the
/// connection, runs the body and closes it, whatever happens.
public struct TransferClient: ~Copyable {
    private var inbound: NIOAsyncChannelInboundStream<Frame>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<Frame>
    private let channel: any Channel
    /// How long to wait for any one answer before giving up on the peer.
    public let answerTimeout: Duration

    /// Opens a connection, runs `body` with it, and closes it.
    /// - Parameters:
    ///   - address: the peer's transfer address.
    ///   - settings: the key, the largest frame payload, the event loops, the logger.
    ///   - connectTimeout: how long to try connecting.
    ///   - answerTimeout: how long to wait for one answer.
    ///   - body: what to do with the session.
    /// - Returns: what the body returns.
    /// - Throws: connection errors, `P2PError` for protocol violations and timeouts, and
    ///   whatever the body throws.
    public static func connect<Result: Sendable>(
        to address: SocketAddress,
        settings: TransferSettings,
        connectTimeout: TimeAmount = .seconds(3),
        answerTimeout: Duration = .seconds(15),
        _ body: (inout TransferClient) async throws -> Result
    ) async throws -> Result {
        // NIO's connect does not end when the task is cancelled; closing the channel does.
        // Without this, a caller that gave up on a peer (a timeout, a lookup that has its
        // answer) still waited for a connect to a gone host for the whole `connectTimeout`.
        let attempt = ConnectAttempt()
        let channel: NIOAsyncChannel<Frame, Frame> = try await withTaskCancellationHandler {
            try await ClientBootstrap(group: settings.group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: TransferConnection.receiveAllocator)
                .connect(to: address) { (channel: any Channel) -> EventLoopFuture<NIOAsyncChannel<Frame, Frame>> in
                    guard attempt.begin(channel) else {
                        return channel.eventLoop.makeFailedFuture(CancellationError())
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        try TransferConnection.configure(
                            channel,
                            maximumPayloadLength: settings.maximumPayloadLength,
                            security: settings.networkKey.map {
                                .init(key: $0, isServer: false, logger: settings.logger)
                            }
                        )
                    }
                }
        } onCancel: {
            attempt.cancel()
        }
        return try await channel.executeThenClose { inbound, outbound in
            var session = TransferClient(
                inbound: inbound.makeAsyncIterator(),
                outbound: outbound,
                channel: channel.channel,
                answerTimeout: answerTimeout
            )
            return try await body(&session)
        }
    }

    private init(
        inbound: NIOAsyncChannelInboundStream<Frame>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        channel: any Channel,
        answerTimeout: Duration
    ) {
        self.inbound = inbound
        self.outbound = outbound
        self.channel = channel
        self.answerTimeout = answerTimeout
    }

    /// A handle for other tasks while one task receives: they may send and close.
    public struct Sender: Sendable {
        fileprivate let outbound: NIOAsyncChannelOutboundWriter<Frame>
        fileprivate let channel: any Channel

        /// Sends several messages in one flush.
        public func send(_ messages: [TransferMessage]) async throws {
            try await self.outbound.write(contentsOf: messages.map { $0.frame() })
        }

        /// The connection's event loop, for timers.
        public var eventLoop: any EventLoop { self.channel.eventLoop }

        /// Closes the connection; the receiving task's wait ends with an error.
        public func close() {
            self.channel.close(promise: nil)
        }
    }

    /// The handle through which other tasks may send on this connection.
    public var sender: Sender { Sender(outbound: self.outbound, channel: self.channel) }

    /// Waits for the next message, however long it takes: for a receiver that also takes
    /// unasked messages and watches for stalled answers itself (see `Sender.close()`).
    /// - Throws: `P2PError` if the peer closes the connection or sends something malformed.
    public mutating func receiveWithoutTimeout() async throws -> TransferMessage {
        guard let frame = try await self.inbound.next() else {
            throw P2PError(code: .protocolViolation, "the peer closed the connection")
        }
        return try TransferMessage(frame: frame)
    }

    /// Sends one message.
    public func send(_ message: TransferMessage) async throws {
        try await self.outbound.write(message.frame())
    }

    /// Sends several messages in one flush.
    public func send(_ messages: [TransferMessage]) async throws {
        try await self.outbound.write(contentsOf: messages.map { $0.frame() })
    }

    /// Waits for the next message.
    /// - Throws: `P2PError` if the peer closes the connection, sends something malformed,
    ///   or says nothing for `answerTimeout`.
    public mutating func receive() async throws -> TransferMessage {
        // The iterator cannot leave this task, so the timeout is a watchdog on the event
        // loop that closes the connection; the wait then ends and is reported as a timeout.
        let timedOut = TimeoutFlag()
        let channel = self.channel
        let watchdog = channel.eventLoop.scheduleTask(in: self.answerTimeout.timeAmount) {
            timedOut.set()
            channel.close(promise: nil)
        }
        defer { watchdog.cancel() }
        let frame: Frame?
        do {
            frame = try await self.inbound.next()
        } catch {
            if timedOut.isSet { throw Self.timeoutError(self.answerTimeout) }
            throw error
        }
        guard let frame else {
            if timedOut.isSet { throw Self.timeoutError(self.answerTimeout) }
            throw P2PError(code: .protocolViolation, "the peer closed the connection")
        }
        return try TransferMessage(frame: frame)
    }

    private static func timeoutError(_ timeout: Duration) -> P2PError {
        P2PError(code: .timedOut, "the peer sent nothing for \(timeout)")
    }

    /// Half-closes the connection: the peer sees the end of requests and closes its side.
    public func finish() {
        self.outbound.finish()
    }

    /// Asks for the peer's inventory.
    public mutating func inventory() async throws -> [InventoryEntry] {
        try await self.send(.inventoryRequest)
        switch try await self.receive() {
        case .inventory(let entries): return entries
        case let other: throw P2PError(code: .protocolViolation, "expected an inventory, got \(other.kind)")
        }
    }

    /// Asks for a manifest and checks that it hashes to the id.
    /// - Parameter id: the file.
    /// - Returns: the verified manifest, or `nil` if the peer does not have it.
    /// - Throws: `P2PError` (`corrupt`) if the manifest does not hash to `id`.
    public mutating func manifest(for id: FileID) async throws -> Manifest? {
        try await self.send(.manifestRequest(id))
        switch try await self.receive() {
        case .manifest(let bytes): return try Manifest.decode(bytes, expectedID: id)
        case .failure: return nil
        case let other: throw P2PError(code: .protocolViolation, "expected a manifest, got \(other.kind)")
        }
    }

    /// Asks for the collections (shared folders) the peer offers.
    public mutating func collections() async throws -> [CollectionEntry] {
        try await self.send(.collectionListRequest)
        switch try await self.receive() {
        case .collectionList(let entries): return entries
        case let other: throw P2PError(code: .protocolViolation, "expected a collection list, got \(other.kind)")
        }
    }

    /// Asks for a collection manifest and checks it: that it hashes to the id, and that its
    /// every entry is safe to recreate (`CollectionManifest.decode`).
    /// - Parameter id: the collection.
    /// - Returns: the verified manifest, or `nil` if the peer does not have it.
    /// - Throws: `P2PError`: `corrupt` if the manifest does not hash to `id`;
    ///   `protocolViolation` or `badName` if it is malformed or names an unsafe path.
    public mutating func collectionManifest(for id: FileID) async throws -> CollectionManifest? {
        try await self.send(.collectionManifestRequest(id))
        switch try await self.receive() {
        case .collectionManifest(let bytes): return try CollectionManifest.decode(bytes, expectedID: id)
        case .failure: return nil
        case let other:
            throw P2PError(code: .protocolViolation, "expected a collection manifest, got \(other.kind)")
        }
    }
}

/// Set by a watchdog on the event loop, read by the waiting task.
private final class TimeoutFlag: Sendable {
    private let value = Mutex(false)
    func set() { self.value.withLock { $0 = true } }
    var isSet: Bool { self.value.withLock { $0 } }
}

/// A connection being opened, so that a cancelled task can close it before it is up.
private final class ConnectAttempt: Sendable {
    private let state = Mutex<(channel: (any Channel)?, cancelled: Bool)>((nil, false))

    /// Records the channel being connected.
    /// - Returns: false if the attempt was cancelled already: do not go on.
    func begin(_ channel: any Channel) -> Bool {
        self.state.withLock { state in
            state.channel = channel
            return !state.cancelled
        }
    }

    /// Closes the channel if there is one yet; stops `begin` from going on if not.
    func cancel() {
        let channel = self.state.withLock { state in
            state.cancelled = true
            return state.channel
        }
        channel?.close(promise: nil)
    }
}
