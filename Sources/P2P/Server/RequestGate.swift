import DequeModule
import NIOCore

/// Hands a served connection's requests to the responder one at a time, and only while its
/// earlier answers are on their way: the server's bound on what one connection can make it
/// hold, whatever the client pipelines and whether or not it reads its answers.
///
/// Why a handler of its own: the async writer the responder writes with learns that the
/// socket is full only when the event loop has run the writes already posted to it. On a
/// busy loop a responder with requests to hand could post answer after answer before that
/// (measured: 224 connections that each sent 2,000 requests and read nothing grew a peer
/// to 5 GiB). Here the event loop itself decides when the responder gets its next request,
/// after it has seen the answers so far; so at most `maximumUnsentBytes` and the two
/// answers the loop has not seen yet wait to be sent.
///
/// Requests that arrive meanwhile wait here, and the socket is not read while
/// `maximumQueued` of them, or `maximumQueuedBytes` (pushed chunks are large), wait: the
/// kernel then holds the client back. Besides these, at most what came in the same socket
/// read is held. When the connection
/// ends, every waiting request is handed on, so that pushes sent just before a close are
/// still stored.
///
/// Sits right below the async channel's handler, which must let one frame wait at most
/// (its back pressure set to 1 and 1), so that no request waits where the loop cannot
/// hold it back.
final class RequestGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = Frame
    typealias InboundOut = Frame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    /// The back pressure the async channel above must have.
    static let asyncChannelBackPressure = NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark(
        lowWatermark: 1,
        highWatermark: 1
    )

    /// Bytes of frames waiting here at which the socket is not read: four 256 KiB pushes.
    static let maximumQueuedBytes = 1 << 20

    private let maximumQueued: Int
    private let maximumUnsentBytes: Int
    private var queue = Deque<Frame>()
    private var queuedBytes = 0
    /// Bytes of answers written to the pipeline whose write has not completed.
    private var unsentBytes = 0
    /// The responder asked for a request and has not had one.
    private var wanted = false
    private var context: ChannelHandlerContext?

    /// Creates a gate.
    /// - Parameters:
    ///   - maximumQueued: requests waiting here at which the socket is no longer read.
    ///   - maximumUnsentBytes: answer bytes not yet sent at which no request is handed on.
    init(maximumQueued: Int, maximumUnsentBytes: Int) {
        self.maximumQueued = max(1, maximumQueued)
        self.maximumUnsentBytes = max(1, maximumUnsentBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Requests in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = self.unwrapInboundIn(data)
        self.queue.append(request)
        self.queuedBytes += request.encodedLength
        self.handOn(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Requests were handed on one by one, each with its own read-complete. Read on
        // while there is room, whether or not the responder is waiting, so that the next
        // requests are here when it is.
        if self.hasRoom { context.read() }
    }

    /// From the async channel: the responder wants a request (and the socket may be read).
    func read(context: ChannelHandlerContext) {
        self.wanted = true
        self.handOn(context: context)
        if self.hasRoom { context.read() }
    }

    private var hasRoom: Bool {
        self.queue.count < self.maximumQueued && self.queuedBytes < Self.maximumQueuedBytes
    }

    private func handOn(context: ChannelHandlerContext) {
        guard self.wanted, self.unsentBytes < self.maximumUnsentBytes, let request = self.queue.popFirst() else {
            return
        }
        self.queuedBytes -= request.encodedLength
        self.wanted = false
        context.fireChannelRead(self.wrapInboundOut(request))
        context.fireChannelReadComplete()
        // The async channel now holds a request and asks for no more; this read waits in
        // it until the responder has taken the request, and then comes down here as the
        // sign that it wants the next one.
        context.channel.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.handOnAll(context: context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent { self.handOnAll(context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.handOnAll(context: context)
        context.fireErrorCaught(error)
    }

    /// The connection is ending: whatever waits goes up, so that the responder sees every
    /// request that arrived before the end (or the error).
    private func handOnAll(context: ChannelHandlerContext) {
        guard !self.queue.isEmpty else { return }
        while let request = self.queue.popFirst() {
            context.fireChannelRead(self.wrapInboundOut(request))
        }
        self.queuedBytes = 0
        context.fireChannelReadComplete()
    }

    // MARK: Answers out

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let size = self.unwrapOutboundIn(data).encodedLength
        self.unsentBytes += size
        let written = promise ?? context.eventLoop.makePromise()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in
            let gate = bound.value
            gate.unsentBytes -= size
            if let context = gate.context { gate.handOn(context: context) }
        }
        context.write(data, promise: written)
    }
}

@available(*, unavailable)
extension RequestGate: Sendable {}
