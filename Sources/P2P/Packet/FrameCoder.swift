import NIOCore

/// Splits a TCP byte stream into frames, with a hard limit on frame size.
///
/// An oversized length is refused as soon as the header arrives, before any payload is
/// buffered, so a peer cannot make us allocate without bound. Any malformed frame throws,
/// which closes that one connection.
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = Frame

    /// The largest payload accepted.
    public let maximumPayloadLength: Int
    /// Whether each payload is copied into a buffer of its own (see `decode`). A stage
    /// after the decoder that makes a new buffer for every payload anyway (opening a sealed
    /// frame) makes the copy a wasted pass over every byte.
    public let copiesPayloads: Bool
    private let allocator = ByteBufferAllocator()

    /// Creates a decoder.
    /// - Parameters:
    ///   - maximumPayloadLength: the largest payload accepted.
    ///   - copiesPayloads: copy each payload out of the receive buffer; pass `false` only if
    ///     the next handler replaces every payload with a buffer of its own.
    public init(maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength, copiesPayloads: Bool = true) {
        self.maximumPayloadLength = maximumPayloadLength
        self.copiesPayloads = copiesPayloads
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        guard var frame = try Frame.read(from: &buffer, maximumPayloadLength: self.maximumPayloadLength) else {
            return nil
        }
        // The payload is a slice of the receive buffer (up to 1 MiB, several frames). Kept
        // as a slice, a frame that waits (queued for the reader, being verified, being
        // written) keeps that whole buffer alive, and the next read appended to it copies
        // all of it (copy on write): with 15 connections, a downloader held 100+ MiB. One
        // copy into a buffer of its own is cheaper than both.
        if self.copiesPayloads && frame.payload.readableBytes > 0 {
            var owned = self.allocator.buffer(capacity: frame.payload.readableBytes)
            owned.writeImmutableBuffer(frame.payload)
            frame.payload = owned
        }
        return frame
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        try self.decode(buffer: &buffer)
    }
}

/// Writes frames to a TCP stream: the header, then the payload as its own buffer, so a
/// large chunk is never copied behind its header.
public final class FrameEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = Frame
    public typealias OutboundOut = ByteBuffer

    /// Creates an encoder.
    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = self.unwrapOutboundIn(data)
        var header = context.channel.allocator.buffer(capacity: Frame.headerLength)
        frame.writeHeader(to: &header)
        if frame.payload.readableBytes == 0 {
            context.write(self.wrapOutboundOut(header), promise: promise)
        } else {
            context.write(self.wrapOutboundOut(header), promise: nil)
            context.write(self.wrapOutboundOut(frame.payload), promise: promise)
        }
    }
}

@available(*, unavailable)
extension FrameEncoder: Sendable {}
