import NIOCore

/// Answers every request with a failure; stands in until the storage-backed responder.
public struct NullResponder: TransferResponder {
    public init() {}

    public func serve(
        inbound: NIOAsyncChannelInboundStream<Frame>,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?
    ) async throws {
        for try await _ in inbound {
            try await outbound.write(Frame(type: .failure))
        }
    }
}
