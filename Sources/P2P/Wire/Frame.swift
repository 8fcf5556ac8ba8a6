import NIOCore

/// One message on a transfer connection: the seed's packet (checksum, chunk number, data)
/// with an explicit length, a version and a type, so that a bad frame is rejected rather
/// than guessed at.
///
/// ```
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+
/// |                  payload length (big-endian)                  |
/// +---------------+---------------+-------------------------------+
/// |    version    |     type      |      checksum (RFC 1071)      |
/// +---------------+---------------+-------------------------------+
/// |                 chunk number (big-endian)                     |
/// +---------------------------------------------------------------+
/// |                 payload (payload length bytes) ...            |
/// +---------------------------------------------------------------+
/// ```
///
/// The checksum covers the 12 header bytes, with the checksum field taken as zero, and the
/// payload. The length comes first so that a stream reader knows, from the first four
/// bytes, whether to wait for more or to refuse an oversized frame at once.
public struct Frame: Sendable, Equatable {
    /// Bytes in the fixed header.
    public static let headerLength = 12
    /// The protocol version this build speaks.
    public static let protocolVersion: UInt8 = 1
    /// The largest payload accepted unless a caller chooses otherwise: a 16 MiB chunk plus
    /// room for its file id and, on an encrypted connection, the tags of its sealed records
    /// (16 bytes per 64 KiB: 4 KiB).
    public static let defaultMaximumPayloadLength = 16 * 1024 * 1024 + 8 * 1024

    /// What the frame carries.
    public var type: FrameType
    /// The chunk the frame concerns; zero where the type has no chunk.
    public var chunkNumber: UInt32
    /// The type-specific body.
    public var payload: ByteBuffer

    /// Creates a frame.
    /// - Parameters:
    ///   - type: what the frame carries.
    ///   - chunkNumber: the chunk it concerns, zero if none.
    ///   - payload: the body.
    public init(type: FrameType, chunkNumber: UInt32 = 0, payload: ByteBuffer = ByteBuffer()) {
        self.type = type
        self.chunkNumber = chunkNumber
        self.payload = payload
    }
}

extension Frame {
    /// The checksum of a frame with this type, chunk number and payload.
    static func checksum(version: UInt8, type: UInt8, chunkNumber: UInt32, payload: ByteBuffer) -> UInt16 {
        var header: (UInt32, UInt8, UInt8, UInt16, UInt32) = (
            UInt32(payload.readableBytes).bigEndian, version, type, 0, chunkNumber.bigEndian
        )
        var checksum = InternetChecksum()
        withUnsafeBytes(of: &header) { raw in
            // The tuple has no padding (4 + 1 + 1 + 2 + 4 bytes, naturally aligned).
            checksum.update(UnsafeRawBufferPointer(rebasing: raw[0..<Frame.headerLength]))
        }
        payload.withUnsafeReadableBytes { checksum.update($0) }
        return checksum.value
    }

    /// The number of bytes `write(to:)` appends.
    public var encodedLength: Int { Self.headerLength + self.payload.readableBytes }

    /// Appends the frame, header and payload, to `buffer`.
    /// - Parameter buffer: where the bytes go.
    public func write(to buffer: inout ByteBuffer) {
        self.writeHeader(to: &buffer)
        buffer.writeImmutableBuffer(self.payload)
    }

    /// Appends only the header; the payload is to follow. Lets a sender pass a large
    /// payload on as its own buffer instead of copying it behind the header.
    /// - Parameter buffer: where the bytes go.
    public func writeHeader(to buffer: inout ByteBuffer) {
        let checksum = Self.checksum(
            version: Self.protocolVersion,
            type: self.type.rawValue,
            chunkNumber: self.chunkNumber,
            payload: self.payload
        )
        buffer.writeInteger(UInt32(self.payload.readableBytes))
        buffer.writeInteger(Self.protocolVersion)
        buffer.writeInteger(self.type.rawValue)
        buffer.writeInteger(checksum)
        buffer.writeInteger(self.chunkNumber)
    }

    /// Encodes the frame into a new buffer (the seed's `create_packet`).
    /// - Parameter allocator: where to get the buffer.
    /// - Returns: header and payload.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: self.encodedLength)
        self.write(to: &buffer)
        return buffer
    }

    /// A frame's fixed header, checked for everything that can be checked before the
    /// payload is there: version, type and length. The checksum waits for the payload.
    struct Header {
        var length: Int
        var type: FrameType
        var checksum: UInt16
        var chunkNumber: UInt32

        /// Reads the header at the front of `buffer` without consuming it.
        /// - Returns: the header, or `nil` if fewer than `Frame.headerLength` bytes are there.
        /// - Throws: `PacketError` for an unknown version or type, or an oversized length.
        static func peek(_ buffer: ByteBuffer, maximumPayloadLength: Int) throws(PacketError) -> Header? {
            guard buffer.readableBytes >= Frame.headerLength else { return nil }
            let start = buffer.readerIndex
            // The header is present, so these reads cannot fail.
            let length = Int(buffer.getInteger(at: start, as: UInt32.self)!)
            let version = buffer.getInteger(at: start + 4, as: UInt8.self)!
            let typeValue = buffer.getInteger(at: start + 5, as: UInt8.self)!
            guard version == Frame.protocolVersion else { throw .unsupportedVersion(version) }
            guard let type = FrameType(rawValue: typeValue) else { throw .unknownType(typeValue) }
            guard length <= maximumPayloadLength else {
                throw .frameTooLarge(declared: length, maximum: maximumPayloadLength)
            }
            return Header(
                length: length,
                type: type,
                checksum: buffer.getInteger(at: start + 6, as: UInt16.self)!,
                chunkNumber: buffer.getInteger(at: start + 8, as: UInt32.self)!
            )
        }

        /// The frame this header begins, once its whole payload is there.
        /// - Throws: `PacketError.badChecksum` if header and payload do not add up.
        func frame(payload: ByteBuffer) throws(PacketError) -> Frame {
            // `peek` accepted only this version and a known type.
            let actual = Frame.checksum(
                version: Frame.protocolVersion,
                type: self.type.rawValue,
                chunkNumber: self.chunkNumber,
                payload: payload
            )
            guard actual == self.checksum else { throw .badChecksum(expected: self.checksum, actual: actual) }
            return Frame(type: self.type, chunkNumber: self.chunkNumber, payload: payload)
        }

        /// Consumes this header and the payload after it from `buffer`, which must hold
        /// them whole, as a slice of `buffer`; on a bad checksum nothing is consumed.
        /// - Throws: `PacketError.badChecksum` if header and payload do not add up.
        func read(from buffer: inout ByteBuffer) throws(PacketError) -> Frame {
            let payload = buffer.getSlice(at: buffer.readerIndex + Frame.headerLength, length: self.length)!
            let frame = try self.frame(payload: payload)
            buffer.moveReaderIndex(forwardBy: Frame.headerLength + self.length)
            return frame
        }
    }

    /// Reads one frame from the front of `buffer` (the seed's `parse_packet`).
    ///
    /// On success the frame's bytes are consumed. When the buffer holds only part of a
    /// frame, `nil` is returned and nothing is consumed, so a stream reader can wait for
    /// more. Everything else that is wrong throws, and the reader index is left where it
    /// was.
    /// - Parameters:
    ///   - buffer: bytes from the wire.
    ///   - maximumPayloadLength: the largest payload to accept.
    /// - Returns: the frame, or `nil` if more bytes are needed.
    /// - Throws: `PacketError` for an oversized, unknown, or corrupt frame.
    public static func read(
        from buffer: inout ByteBuffer,
        maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength
    ) throws(PacketError) -> Frame? {
        guard let header = try Header.peek(buffer, maximumPayloadLength: maximumPayloadLength),
            buffer.readableBytes - Self.headerLength >= header.length
        else { return nil }
        return try header.read(from: &buffer)
    }

    /// Parses bytes that must hold exactly one whole frame.
    /// - Parameters:
    ///   - bytes: the frame.
    ///   - maximumPayloadLength: the largest payload to accept.
    /// - Returns: the frame.
    /// - Throws: `PacketError`, including `truncatedHeader`, `truncatedPayload` and
    ///   `trailingBytes` since no more bytes will come.
    public static func parse(
        _ bytes: ByteBuffer,
        maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength
    ) throws(PacketError) -> Frame {
        var buffer = bytes
        guard buffer.readableBytes >= Self.headerLength else {
            throw .truncatedHeader(available: buffer.readableBytes)
        }
        guard let frame = try Self.read(from: &buffer, maximumPayloadLength: maximumPayloadLength) else {
            let declared = Int(buffer.getInteger(at: buffer.readerIndex, as: UInt32.self)!)
            throw .truncatedPayload(declared: declared, available: buffer.readableBytes - Self.headerLength)
        }
        guard buffer.readableBytes == 0 else { throw .trailingBytes(buffer.readableBytes) }
        return frame
    }
}
