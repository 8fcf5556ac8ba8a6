import NIOCore
import NIOPosix
import Synchronization

/// A bound UDP socket: received datagrams as an async sequence, sends as async calls.
///
/// NIO closes a datagram channel after most send errors; callers check `isActive` after a
/// failed send and bind a new socket, so one bad interface never stops discovery.
final class DatagramSocket: Sendable {
    /// When a socket last dropped a datagram unread, shared by the sockets of one
    /// discovery: silence from a peer means nothing while its datagrams may be among those
    /// dropped (`PeerRoster.expire`).
    final class Drops: Sendable {
        /// Uptime nanoseconds of the last drop; zero for none.
        private let last = Atomic<UInt64>(0)

        init() {}

        /// Records a drop now.
        func record() {
            self.last.store(UInt64(NIODeadline.now().uptimeNanoseconds), ordering: .relaxed)
        }

        /// When the last drop was, if any.
        var lastDrop: NIODeadline? {
            let value = self.last.load(ordering: .relaxed)
            return value == 0 ? nil : .uptimeNanoseconds(value)
        }
    }

    /// The datagrams received, in order. Bounded: under a flood the oldest are dropped
    /// rather than buffered without limit, and the drop is recorded.
    let datagrams: AsyncStream<AddressedEnvelope<ByteBuffer>>
    private let channel: any Channel

    private init(channel: any Channel, datagrams: AsyncStream<AddressedEnvelope<ByteBuffer>>) {
        self.channel = channel
        self.datagrams = datagrams
    }

    /// Binds a socket with SO_BROADCAST, optionally SO_REUSEADDR and packet info.
    /// - Parameters:
    ///   - host: the local address, usually 0.0.0.0.
    ///   - port: the local port, 0 for any.
    ///   - shared: whether other sockets may bind the same port (SO_REUSEADDR).
    ///   - group: the event loops.
    ///   - drops: where drops are recorded.
    /// - Returns: the socket.
    /// - Throws: if the port cannot be bound.
    static func bind(
        host: String,
        port: Int,
        shared: Bool,
        group: any EventLoopGroup,
        drops: Drops = Drops()
    ) async throws -> DatagramSocket {
        let (stream, continuation) = AsyncStream.makeStream(
            of: AddressedEnvelope<ByteBuffer>.self,
            bufferingPolicy: .bufferingNewest(512)
        )
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: shared ? 1 : 0)
            .channelOption(.socketOption(.so_broadcast), value: 1)
            .channelOption(.receivePacketInfo, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        DatagramForwarder(continuation: continuation, drops: drops)
                    )
                }
            }
            .bind(host: host, port: port)
            .get()
        return DatagramSocket(channel: channel, datagrams: stream)
    }

    /// The bound local port.
    var localPort: Int { self.channel.localAddress?.port ?? 0 }

    /// Whether the socket is still open.
    var isActive: Bool { self.channel.isActive }

    /// Sends one datagram.
    /// - Parameters:
    ///   - bytes: the payload.
    ///   - address: where to.
    /// - Throws: the send error; check `isActive` afterwards.
    func send(_ bytes: ByteBuffer, to address: SocketAddress) async throws {
        try await self.channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: bytes)).get()
    }

    /// Sends one datagram without waiting; a failure shows as the socket closing.
    /// - Parameters:
    ///   - bytes: the payload.
    ///   - address: where to.
    func post(_ bytes: ByteBuffer, to address: SocketAddress) {
        self.channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: bytes), promise: nil)
    }

    /// Sends one datagram after a delay, without waiting; the bytes are made when it goes,
    /// so that a sealed datagram carries the time and counter of its sending, and whoever
    /// made it can still decide not to send it then.
    /// - Parameters:
    ///   - delay: how long to wait.
    ///   - address: where to.
    ///   - bytes: makes the payload, or returns `nil` to send nothing.
    func post(after delay: TimeAmount, to address: SocketAddress, _ bytes: @escaping @Sendable () -> ByteBuffer?) {
        self.channel.eventLoop.scheduleTask(in: delay) {
            if let payload = bytes() { self.post(payload, to: address) }
        }
    }

    /// Closes the socket; the datagram sequence then ends.
    func close() async {
        try? await self.channel.close()
    }
}

/// Passes received datagrams to an `AsyncStream` and finishes it when the channel closes.
private final class DatagramForwarder: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let continuation: AsyncStream<AddressedEnvelope<ByteBuffer>>.Continuation
    private let drops: DatagramSocket.Drops

    init(continuation: AsyncStream<AddressedEnvelope<ByteBuffer>>.Continuation, drops: DatagramSocket.Drops) {
        self.continuation = continuation
        self.drops = drops
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .dropped = self.continuation.yield(self.unwrapInboundIn(data)) {
            self.drops.record()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Receive errors (an ICMP unreachable reported on a later read) are not fatal to
        // a datagram socket: keep it open.
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.continuation.finish()
    }
}

@available(*, unavailable)
extension DatagramForwarder: Sendable {}
