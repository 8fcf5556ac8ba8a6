import NIOCore

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
