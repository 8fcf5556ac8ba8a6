import NIOCore
import NIOPosix

/// A bound UDP socket: received datagrams through an `NIOAsyncChannel`, as transfer
/// connections are read, and sends as calls on its channel.
///
/// Reading is back-pressured: while the receiver is `highWatermark` datagrams behind, NIO
/// reads no more from the socket, so under a flood the kernel's receive buffer fills and
/// the kernel drops datagrams; nothing piles up in this process.
///
/// Sends go to the channel directly rather than through the async channel's writer,
/// because each datagram send needs its own outcome (an interface that refuses a broadcast
/// fails that send alone), which the writer does not report. NIO closes a datagram channel
/// after most send errors; callers check `isActive` after a failed send and bind a new
/// socket, so one bad interface never stops discovery.
final class DatagramSocket: Sendable {
    typealias Envelope = AddressedEnvelope<ByteBuffer>

    /// How many received datagrams may wait for the receiver before NIO stops reading,
    /// and how few must be left before it reads again: enough to ride out a burst (a
    /// thousand answers to a `start`) beside the kernel's buffer, at most a few MiB (NIO
    /// reads each datagram into a buffer of its own of up to 2 KiB).
    static let backPressure = NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark(
        lowWatermark: 512,
        highWatermark: 1024
    )

    private let asyncChannel: NIOAsyncChannel<Envelope, Envelope>
    private var channel: any Channel { self.asyncChannel.channel }

    private init(asyncChannel: NIOAsyncChannel<Envelope, Envelope>) {
        self.asyncChannel = asyncChannel
    }

    /// Binds a socket with SO_BROADCAST, optionally SO_REUSEADDR and packet info.
    /// - Parameters:
    ///   - host: the local address, usually 0.0.0.0.
    ///   - port: the local port, 0 for any.
    ///   - shared: whether other sockets may bind the same port (SO_REUSEADDR).
    ///   - group: the event loops.
    /// - Returns: the socket.
    /// - Throws: if the port cannot be bound.
    static func bind(host: String, port: Int, shared: Bool, group: any EventLoopGroup) async throws -> DatagramSocket {
        let asyncChannel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: shared ? 1 : 0)
            .channelOption(.socketOption(.so_broadcast), value: 1)
            .channelOption(.receivePacketInfo, value: true)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReceiveErrorFilter())
                    return try NIOAsyncChannel<Envelope, Envelope>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(backPressureStrategy: Self.backPressure)
                    )
                }
            }
        return DatagramSocket(asyncChannel: asyncChannel)
    }

    /// The bound local port.
    var localPort: Int { self.channel.localAddress?.port ?? 0 }

    /// Whether the socket is still open.
    var isActive: Bool { self.channel.isActive }

    /// Hands every datagram received to `handle`, in order, until the task is cancelled,
    /// and returns once the socket is closed (`close()`, or NIO after a send error).
    /// Cancellation does not close the socket: its owner may still have to send on it (a
    /// `stop` on the way out). Call it once.
    /// - Parameter handle: what to do with each datagram; it runs on the calling task.
    func receive(_ handle: (Envelope) -> Void) async {
        try? await self.asyncChannel.executeThenClose { inbound, _ in
            // Cancellation ends the loop, with an error; the socket stays open all the same
            // (not cancellable: its owner closes it when it is done with it).
            do {
                for try await envelope in inbound {
                    handle(envelope)
                }
            } catch {}
            try await self.channel.closeFuture.get()
        }
    }

    /// Sends one datagram.
    /// - Parameters:
    ///   - bytes: the payload.
    ///   - address: where to.
    /// - Throws: the send error; check `isActive` afterwards.
    func send(_ bytes: ByteBuffer, to address: SocketAddress) async throws {
        try await self.channel.writeAndFlush(Envelope(remoteAddress: address, data: bytes)).get()
    }

    /// Sends one datagram without waiting; a failure shows as the socket closing.
    /// - Parameters:
    ///   - bytes: the payload.
    ///   - address: where to.
    func post(_ bytes: ByteBuffer, to address: SocketAddress) {
        self.channel.writeAndFlush(Envelope(remoteAddress: address, data: bytes), promise: nil)
    }

    /// Sends one datagram after a delay, without waiting; the bytes are made when it goes,
    /// so that a sealed datagram carries the time and counter of its sending.
    /// - Parameters:
    ///   - delay: how long to wait.
    ///   - address: where to.
    ///   - bytes: makes the payload.
    func post(after delay: TimeAmount, to address: SocketAddress, _ bytes: @escaping @Sendable () -> ByteBuffer) {
        self.channel.eventLoop.scheduleTask(in: delay) {
            self.post(bytes(), to: address)
        }
    }

    /// Closes the socket; `receive` then returns.
    func close() async {
        try? await self.channel.close()
    }
}

/// Keeps a datagram socket open through receive errors (an ICMP unreachable reported on a
/// later read), which would otherwise end the async channel's inbound sequence: they are
/// not fatal to a datagram socket.
private final class ReceiveErrorFilter: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

@available(*, unavailable)
extension ReceiveErrorFilter: Sendable {}
