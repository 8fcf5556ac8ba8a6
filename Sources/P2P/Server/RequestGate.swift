import NIOCore

/// Hands a served connection's requests to the responder one at a time, and only while its
/// earlier answers are on their way: the server's bound on what one connection can make it
/// hold, whatever the client pipelines and whether or not it reads its answers.
///
/// What to hand on and when is decided by a `RequestQueue` value; this handler does it.
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

    private var queue: RequestQueue<Frame>
    private var context: ChannelHandlerContext?

    /// Creates a gate.
    /// - Parameters:
    ///   - maximumQueued: requests waiting here at which the socket is no longer read.
    ///   - maximumUnsentBytes: answer bytes not yet sent at which no request is handed on.
    init(maximumQueued: Int, maximumUnsentBytes: Int) {
        self.queue = RequestQueue(
            maximumQueued: maximumQueued,
            maximumQueuedBytes: Self.maximumQueuedBytes,
            maximumUnsentBytes: maximumUnsentBytes
        )
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
        self.handOn(self.queue.arrived(request, bytes: request.encodedLength), context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Requests were handed on one by one, each with its own read-complete. Read on
        // while there is room, whether or not the responder is waiting, so that the next
        // requests are here when it is.
        if self.queue.hasRoom { context.read() }
    }

    /// From the async channel: the responder wants a request (and the socket may be read).
    func read(context: ChannelHandlerContext) {
        self.handOn(self.queue.wanted(), context: context)
        if self.queue.hasRoom { context.read() }
    }

    private func handOn(_ request: Frame?, context: ChannelHandlerContext) {
        guard let request else { return }
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
        let requests = self.queue.ending()
        guard !requests.isEmpty else { return }
        for request in requests { context.fireChannelRead(self.wrapInboundOut(request)) }
        context.fireChannelReadComplete()
    }

    // MARK: Answers out

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let size = self.unwrapOutboundIn(data).encodedLength
        self.queue.answerWritten(bytes: size)
        let written = promise ?? context.eventLoop.makePromise()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in
            let gate = bound.value
            let request = gate.queue.answerSent(bytes: size)
            if let context = gate.context { gate.handOn(request, context: context) }
        }
        context.write(data, promise: written)
    }
}

@available(*, unavailable)
extension RequestGate: Sendable {}
