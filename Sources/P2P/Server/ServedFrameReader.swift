import NIOCore

/// Splits a served connection's bytes into frames (`FrameDecoder`) and keeps what an
/// unfinished frame may cost within bounds; the first handler of a served connection.
///
/// - **Small frames until established.** A connection's first frames are small: the
///   handshake's hellos, or without a key a request. Until the connection is established
///   (authenticated, or without a key once its first frame has arrived whole) a frame may
///   carry at most `openingPayloadLimit` bytes, so a stranger cannot make this peer buffer
///   16 MiB before it has shown anything; a larger one is refused from its header. Then
///   the full limit applies, so downloads are not slowed.
/// - **Shared budget.** After each read the bytes held for an unfinished frame are
///   recorded with the server (`ServedConnections`); a connection they would take over the
///   shared budget is closed.
/// - **Deadlines** (`ConnectionDeadlines`): a connection that completes no frame and takes
///   no answer bytes for the idle timeout is closed, and so is one whose frame is not whole
///   within the frame timeout of its first byte.
///
/// Complete frames are counted with the server, which sheds the connections that did least
/// when it is full.
final class ServedFrameReader: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Frame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What establishes a connection, after which frames may have the full size.
    enum Establishment {
        /// Its first frame arriving whole (a swarm without a key).
        case firstFrame
        /// The secure channel's handshake (`SecureChannelHandler.Authenticated`).
        case authentication
    }

    private var decoder: FrameDecoder
    private let fullPayloadLimit: Int
    private let establishment: Establishment
    private let connections: ServedConnections
    private let idleTimeout: Duration
    private let frameTimeout: Duration
    /// Bytes received and not yet decoded.
    private var received: ByteBuffer? = nil
    private var deadlines: ConnectionDeadlines? = nil
    private var timer: Scheduled<Void>? = nil
    private var timerDue: ContinuousClock.Instant? = nil
    /// A read was asked of the socket and nothing was read since: the server is reading.
    private var reading = false
    private var closed = false

    /// Creates a reader.
    /// - Parameters:
    ///   - decoder: the frame decoder, its limit the full one.
    ///   - openingPayloadLimit: the largest payload until the connection is established.
    ///   - establishment: what establishes the connection.
    ///   - connections: the server's connections, for the budget and the counts.
    ///   - idleTimeout: how long the connection may go without progress.
    ///   - frameTimeout: how long a frame may take from its first byte to its last.
    init(
        decoder: FrameDecoder,
        openingPayloadLimit: Int,
        establishment: Establishment,
        connections: ServedConnections,
        idleTimeout: Duration,
        frameTimeout: Duration
    ) {
        self.decoder = decoder
        self.fullPayloadLimit = decoder.maximumPayloadLength
        self.decoder.maximumPayloadLength = min(openingPayloadLimit, decoder.maximumPayloadLength)
        self.establishment = establishment
        self.connections = connections
        self.idleTimeout = idleTimeout
        self.frameTimeout = frameTimeout
    }

    /// Whether full-size frames are accepted yet.
    var isEstablished: Bool { self.decoder.maximumPayloadLength == self.fullPayloadLimit }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard self.deadlines == nil else { return }
        self.deadlines = ConnectionDeadlines(
            idleTimeout: self.idleTimeout,
            frameTimeout: self.frameTimeout,
            openedAt: .now
        )
        self.schedule(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.finish(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish(context: context)
        context.fireChannelInactive()
    }

    /// The connection is over: no timer, nothing held of the budget.
    private func finish(context: ChannelHandlerContext) {
        guard !self.closed else { return }
        self.closed = true
        self.timer?.cancel()
        self.timer = nil
        self.received = nil
        self.connections.releaseUnfinishedFrame(of: ObjectIdentifier(context.channel))
    }

    // MARK: Bytes in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closed else { return }
        let bytes = self.unwrapInboundIn(data)
        if var received = self.received.take(), received.readableBytes > 0 {
            var bytes = bytes
            received.writeBuffer(&bytes)
            self.received = received
        } else {
            self.received = bytes
        }
        var completed = 0
        do {
            while !self.closed, var buffer = self.received.take() {
                let frame = try self.decoder.decode(buffer: &buffer)
                self.received = buffer
                guard let frame else { break }
                completed += 1
                self.deadlines?.frameCompleted(at: .now)
                if self.establishment == .firstFrame { self.establish() }
                context.fireChannelRead(self.wrapInboundOut(frame))
            }
        } catch {
            self.fail(context: context, error)
            return
        }
        guard !self.closed else { return }
        let now = ContinuousClock.now
        let id = ObjectIdentifier(context.channel)
        if completed > 0 { self.connections.recordFrames(completed, of: id, at: now) }
        self.compact()
        let held = (self.received?.readableBytes ?? 0) + self.decoder.assembledBytes
        guard self.connections.holdUnfinishedFrame(held, of: id, remote: context.channel.remoteAddress) else {
            self.fail(
                context: context,
                P2PError(
                    code: .protocolViolation,
                    "an unfinished frame of \(held) bytes would go over the server's budget for unfinished frames"
                )
            )
            return
        }
        self.deadlines?.bytesRead(holdingUnfinishedFrame: held > 0, at: now)
        self.schedule(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.reading = false
        context.fireChannelReadComplete()
    }

    /// Lets go of the receive buffer a few leftover bytes would otherwise keep (a read may
    /// be a megabyte; a trickling peer's next byte must not keep all of it).
    private func compact() {
        guard var received = self.received.take(), received.readableBytes > 0 else { return }
        if received.capacity > 4 * max(received.readableBytes, 4096) {
            var compacted = ByteBufferAllocator().buffer(capacity: received.readableBytes)
            compacted.writeBuffer(&received)
            received = compacted
        }
        self.received = received
    }

    private func establish() {
        self.decoder.maximumPayloadLength = self.fullPayloadLimit
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        self.finish(context: context)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    // MARK: Deadlines

    /// Makes sure a timer fires by the next deadline.
    private func schedule(context: ChannelHandlerContext) {
        guard !self.closed, let due = self.deadlines?.nextCheck else { return }
        if let scheduled = self.timerDue, scheduled <= due, self.timer != nil { return }
        self.timer?.cancel()
        self.timerDue = due
        let delay = max(.zero, due - .now)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(in: delay.timeAmount) {
            let (reader, context) = bound.value
            reader.timer = nil
            reader.timerDue = nil
            reader.deadlineReached(context: context)
        }
    }

    private func deadlineReached(context: ChannelHandlerContext) {
        guard !self.closed, var deadlines = self.deadlines else { return }
        let verdict = deadlines.check(at: .now, reading: self.reading)
        self.deadlines = deadlines
        switch verdict {
        case .keep:
            self.schedule(context: context)
        case .idle, .frameTooSlow:
            // Quietly, as a connection that ends: a flood of trickling connections must not
            // become a flood of log lines.
            self.finish(context: context)
            context.close(promise: nil)
        }
    }

    // MARK: Out

    func read(context: ChannelHandlerContext) {
        self.reading = true
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Frames' payloads carry the promises of the writes above (the request gate gives
        // every answer one); the socket taking them is the client reading its answers.
        if let promise {
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            promise.futureResult.whenSuccess { bound.value.deadlines?.answerProgressed(at: .now) }
        }
        context.write(data, promise: promise)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if event is SecureChannelHandler.Authenticated {
            self.establish()
            promise?.succeed()
            return
        }
        context.triggerUserOutboundEvent(event, promise: promise)
    }
}

@available(*, unavailable)
extension ServedFrameReader: Sendable {}
