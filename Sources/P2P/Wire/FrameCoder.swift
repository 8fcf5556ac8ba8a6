import NIOCore

/// Splits a TCP byte stream into frames, with a hard limit on frame size.
///
/// An oversized length is refused as soon as the header arrives, before any payload is
/// buffered, so a peer cannot make us allocate without bound. Any malformed frame throws,
/// which closes that one connection.
///
/// A frame whose payload has not all arrived is assembled in a buffer of its own: each
/// read's bytes are moved there once, and the payload is handed on as that buffer. Left
/// in NIO's cumulation buffer instead, every byte of a chunk was copied twice: into the
/// cumulation as reads were appended to it, then out into a buffer of its own (see
/// `decode`).
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = Frame

    /// The largest payload accepted. A server raises it once a connection is established
    /// (`ServedFrameReader`): until then only small frames are expected.
    public var maximumPayloadLength: Int
    /// Whether each payload gets a buffer of its own (see `decode`). A stage after the
    /// decoder that makes a new buffer for every payload anyway (opening a sealed frame)
    /// makes that a wasted pass over every byte; without it, payloads stay slices of the
    /// receive buffers.
    public let copiesPayloads: Bool
    /// Where payloads of `largePayloadLength` bytes or more get their buffers.
    private let largePayloadBuffer: @Sendable (_ capacity: Int) -> ByteBuffer
    private let allocator = ByteBufferAllocator()
    /// The frame being assembled: its header and the payload so far.
    private var assembly: (header: Frame.Header, payload: ByteBuffer)?

    /// The most payload reserved for a frame before its bytes arrive: a header alone may
    /// declare up to the maximum, and a peer that sends only headers must not make us
    /// reserve that much per connection. Larger payloads grow as they come.
    static let initialAssemblyCapacity = 1 << 20
    /// Payloads this long or longer (chunks, in practice) get their buffers from the
    /// allocator given for them.
    static let largePayloadLength = 64 * 1024

    /// Creates a decoder.
    /// - Parameters:
    ///   - maximumPayloadLength: the largest payload accepted.
    ///   - copiesPayloads: give each payload a buffer of its own; pass `false` only if the
    ///     next handler replaces every payload with a buffer of its own.
    ///   - largePayloadBuffer: makes the buffer, of the capacity given, for a payload of
    ///     64 KiB or more (a transfer connection's are exactly that size, and place chunks
    ///     for direct writes).
    public init(
        maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength,
        copiesPayloads: Bool = true,
        largePayloadBuffer: @escaping @Sendable (_ capacity: Int) -> ByteBuffer = {
            ByteBufferAllocator().buffer(capacity: $0)
        }
    ) {
        self.maximumPayloadLength = maximumPayloadLength
        self.copiesPayloads = copiesPayloads
        self.largePayloadBuffer = largePayloadBuffer
    }

    /// Bytes of an unfinished frame held in the decoder's own assembly buffer (its header
    /// and the payload so far); bytes still waiting in the caller's buffer are not counted.
    public var assembledBytes: Int {
        self.assembly.map { Frame.headerLength + $0.payload.readableBytes } ?? 0
    }

    /// A buffer of its own for a payload of `length` bytes, of `capacity` to begin with.
    private func payloadBuffer(length: Int, capacity: Int) -> ByteBuffer {
        length >= Self.largePayloadLength
            ? self.largePayloadBuffer(capacity) : self.allocator.buffer(capacity: capacity)
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        if var assembly = self.assembly.take() {
            let missing = assembly.header.length - assembly.payload.readableBytes
            var arrived = buffer.readSlice(length: min(missing, buffer.readableBytes))!
            if arrived.readableBytes > assembly.payload.writableBytes {
                // Past the first megabyte the peer has shown it sends what it declared:
                // make room for all of it at once rather than growing (and copying) by
                // doubling.
                assembly.payload.reserveCapacity(assembly.header.length)
            }
            assembly.payload.writeBuffer(&arrived)
            guard assembly.payload.readableBytes == assembly.header.length else {
                self.assembly = assembly
                return nil
            }
            return try assembly.header.frame(payload: assembly.payload)
        }
        guard let header = try Frame.Header.peek(buffer, maximumPayloadLength: self.maximumPayloadLength) else {
            return nil
        }
        guard buffer.readableBytes - Frame.headerLength >= header.length else {
            // Part of the payload is here. Without a buffer of its own to go to, it waits
            // in the cumulation buffer for the rest.
            guard self.copiesPayloads else { return nil }
            buffer.moveReaderIndex(forwardBy: Frame.headerLength)
            var payload = self.payloadBuffer(
                length: header.length,
                capacity: min(header.length, Self.initialAssemblyCapacity)
            )
            var arrived = buffer.readSlice(length: buffer.readableBytes)!
            payload.writeBuffer(&arrived)
            self.assembly = (header, payload)
            return nil
        }
        var frame = try header.read(from: &buffer)
        // The payload is a slice of the receive buffer (up to 1 MiB, several frames). Kept
        // as a slice, a frame that waits (queued for the reader, being verified, being
        // written) keeps that whole buffer alive, and the next read appended to it copies
        // all of it (copy on write): with 15 connections, a downloader held 100+ MiB. One
        // copy into a buffer of its own is cheaper than both.
        if self.copiesPayloads && frame.payload.readableBytes > 0 {
            var owned = self.payloadBuffer(
                length: frame.payload.readableBytes,
                capacity: frame.payload.readableBytes
            )
            owned.writeImmutableBuffer(frame.payload)
            frame.payload = owned
        }
        return frame
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        if let frame = try self.decode(buffer: &buffer) { return frame }
        // The stream ended inside a frame's payload: say so, as the bytes left over in
        // the cumulation buffer would have.
        if seenEOF, let assembly = self.assembly {
            throw PacketError.truncatedPayload(
                declared: assembly.header.length,
                available: assembly.payload.readableBytes
            )
        }
        return nil
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
