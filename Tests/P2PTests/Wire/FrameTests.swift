import NIOCore
import P2P
import Testing

@Suite("Frame")
struct FrameTests {
    static let payloadLengths = [0, 1, 2, 3, 11, 12, 13, 1000, 65_536, 1_048_577]

    @Test("encode then parse gives the frame back", arguments: FrameType.allCases, Self.payloadLengths)
    func roundTrip(type: FrameType, payloadLength: Int) throws {
        var generator = SeededGenerator(seed: UInt64(type.rawValue) << 32 | UInt64(payloadLength))
        let frame = generator.frame(payloadLength: payloadLength, type: type)

        let encoded = frame.encoded()
        #expect(encoded.readableBytes == Frame.headerLength + payloadLength)
        #expect(frame.encodedLength == encoded.readableBytes)
        #expect(try Frame.parse(encoded) == frame)

        var stream = encoded
        #expect(try Frame.read(from: &stream) == frame)
        #expect(stream.readableBytes == 0)
    }

    @Test("random frames survive encode and parse, also behind other bytes in the buffer")
    func randomRoundTrips() throws {
        var generator = SeededGenerator(seed: 0xF7A3E)
        for _ in 0..<500 {
            let frame = generator.frame(payloadLength: Int.random(in: 0...3000, using: &generator))
            // Bytes before the reader index must be ignored.
            let junk = Int.random(in: 0...7, using: &generator)
            var buffer = generator.buffer(junk)
            buffer.moveReaderIndex(forwardBy: junk)
            frame.write(to: &buffer)
            #expect(try Frame.parse(buffer) == frame)
        }
    }

    @Test(
        "the bytes on the wire follow the documented layout and the checksum verifies",
        arguments: [0, 1, 2, 7, 100]
    )
    func wireLayout(payloadLength: Int) throws {
        var generator = SeededGenerator(seed: 99 + UInt64(payloadLength))
        let frame = generator.frame(payloadLength: payloadLength)
        let bytes = frame.encoded().bytes

        let zeroed = referenceHeader(
            length: UInt32(payloadLength),
            version: 1,
            type: frame.type.rawValue,
            checksum: 0,
            chunkNumber: frame.chunkNumber
        )
        let checksum = ReferenceChecksum.checksum(zeroed + frame.payload.bytes)
        let header = referenceHeader(
            length: UInt32(payloadLength),
            version: 1,
            type: frame.type.rawValue,
            checksum: checksum,
            chunkNumber: frame.chunkNumber
        )
        #expect(Array(bytes[0..<Frame.headerLength]) == header)
        #expect(Array(bytes[Frame.headerLength...]) == frame.payload.bytes)
        // A correct checksum field makes the checksum of the whole frame 0.
        #expect(ReferenceChecksum.checksum(bytes) == 0)
    }

    @Test("writeHeader writes the same header that write(to:) puts before the payload")
    func headerAlone() {
        var generator = SeededGenerator(seed: 5)
        let frame = generator.frame(payloadLength: 321)
        var header = ByteBuffer()
        frame.writeHeader(to: &header)
        #expect(header.readableBytes == Frame.headerLength)
        #expect(header.bytes == Array(frame.encoded().bytes.prefix(Frame.headerLength)))
    }

    @Test("a frame with a payload of exactly the maximum is accepted")
    func exactlyMaximum() throws {
        var generator = SeededGenerator(seed: 6)
        let frame = generator.frame(payloadLength: 100)
        #expect(try Frame.parse(frame.encoded(), maximumPayloadLength: 100) == frame)
    }

    // MARK: Malformed frames

    @Test("fewer bytes than a header: truncatedHeader", arguments: 0..<Frame.headerLength)
    func truncatedHeader(available: Int) {
        var generator = SeededGenerator(seed: 1)
        let encoded = generator.frame(payloadLength: 20).encoded()
        let prefix = encoded.getSlice(at: 0, length: available)!
        #expect(parseError(prefix) == .truncatedHeader(available: available))
    }

    @Test("a header promising more payload than there is: truncatedPayload", arguments: [1, 2, 13, 100])
    func truncatedPayload(missing: Int) {
        var generator = SeededGenerator(seed: 2)
        let encoded = generator.frame(payloadLength: 100).encoded()
        let cut = encoded.getSlice(at: 0, length: encoded.readableBytes - missing)!
        #expect(parseError(cut) == .truncatedPayload(declared: 100, available: 100 - missing))
    }

    @Test(
        "a declared length over the maximum is refused from the header alone",
        arguments: [
            (101, 100), (16 * 1024 * 1024 + 8 * 1024 + 1, Frame.defaultMaximumPayloadLength),
            (Int(UInt32.max), 1 << 20),
        ]
    )
    func tooLargeFromHeaderAlone(declared: Int, maximum: Int) {
        let header = ByteBuffer(
            bytes: referenceHeader(
                length: UInt32(declared),
                version: 1,
                type: FrameType.chunkData.rawValue,
                checksum: 0,
                chunkNumber: 0
            )
        )
        // No payload has arrived, yet the frame is refused rather than waited for.
        #expect(
            parseError(header, maximumPayloadLength: maximum) == .frameTooLarge(declared: declared, maximum: maximum)
        )
        var stream = header
        #expect(throws: PacketError.frameTooLarge(declared: declared, maximum: maximum)) {
            try Frame.read(from: &stream, maximumPayloadLength: maximum)
        }
        #expect(stream.readerIndex == 0)
    }

    @Test("a whole frame one byte over the maximum is refused")
    func wholeFrameTooLarge() {
        var generator = SeededGenerator(seed: 3)
        let encoded = generator.frame(payloadLength: 101).encoded()
        #expect(parseError(encoded, maximumPayloadLength: 100) == .frameTooLarge(declared: 101, maximum: 100))
    }

    @Test("any flipped bit in the checksum or chunk number fields: badChecksum", arguments: 48..<96)
    func flippedHeaderBit(bit: Int) throws {
        var generator = SeededGenerator(seed: 4)
        var bytes = generator.frame(payloadLength: 33).encoded().bytes
        bytes[bit / 8] ^= 1 << (bit % 8)
        let error = try #require(parseError(ByteBuffer(bytes: bytes)))
        guard case .badChecksum(let expected, let actual) = error else {
            Issue.record("expected badChecksum, got \(error)")
            return
        }
        #expect(expected == UInt16(bytes[6]) << 8 | UInt16(bytes[7]))
        var zeroed = bytes
        zeroed[6] = 0
        zeroed[7] = 0
        #expect(actual == ReferenceChecksum.checksum(zeroed))
    }

    @Test("a frame relabelled as another known type: badChecksum")
    func relabelledType() throws {
        var generator = SeededGenerator(seed: 8)
        var bytes = generator.frame(payloadLength: 10, type: .chunkData).encoded().bytes
        bytes[5] = FrameType.pushedChunk.rawValue
        let error = try #require(parseError(ByteBuffer(bytes: bytes)))
        #expect(error.isBadChecksum)
    }

    @Test("a flipped bit in the payload: badChecksum", arguments: [1, 2, 3, 1000, 65_537])
    func flippedPayloadBit(payloadLength: Int) throws {
        var generator = SeededGenerator(seed: 10 + UInt64(payloadLength))
        let encoded = generator.frame(payloadLength: payloadLength).encoded().bytes
        for _ in 0..<20 {
            var bytes = encoded
            let bit = Int.random(in: (Frame.headerLength * 8)..<(bytes.count * 8), using: &generator)
            bytes[bit / 8] ^= 1 << (bit % 8)
            let error = try #require(parseError(ByteBuffer(bytes: bytes)))
            #expect(error.isBadChecksum, "bit \(bit): \(error)")
        }
    }

    @Test("a version other than 1: unsupportedVersion", arguments: [0, 2, 3, 0x7F, 0xFF] as [UInt8])
    func unknownVersion(version: UInt8) {
        var generator = SeededGenerator(seed: 12)
        var bytes = generator.frame(payloadLength: 5).encoded().bytes
        bytes[4] = version
        #expect(parseError(ByteBuffer(bytes: bytes)) == .unsupportedVersion(version))
    }

    @Test("a type byte no FrameType has: unknownType", arguments: [0, 30, 31, 0x80, 0xFF] as [UInt8])
    func unknownType(type: UInt8) {
        var generator = SeededGenerator(seed: 13)
        var bytes = generator.frame(payloadLength: 5).encoded().bytes
        bytes[5] = type
        #expect(parseError(ByteBuffer(bytes: bytes)) == .unknownType(type))
    }

    @Test("bytes after a whole frame: trailingBytes", arguments: [1, 2, 12, 500])
    func trailingBytes(extra: Int) {
        var generator = SeededGenerator(seed: 14)
        var buffer = generator.frame(payloadLength: 40).encoded()
        buffer.writeBytes(generator.bytes(extra))
        #expect(parseError(buffer) == .trailingBytes(extra))
    }

    // MARK: Stream reading

    @Test("read returns nil and consumes nothing on every prefix of a frame")
    func partialInput() throws {
        var generator = SeededGenerator(seed: 15)
        let frame = generator.frame(payloadLength: 50)
        let encoded = frame.encoded()
        for available in 0..<encoded.readableBytes {
            // Start behind a few consumed bytes, so "nothing consumed" means the index stays put.
            var buffer = ByteBuffer(bytes: [1, 2, 3])
            buffer.moveReaderIndex(forwardBy: 3)
            buffer.writeImmutableBuffer(encoded.getSlice(at: 0, length: available)!)
            #expect(try Frame.read(from: &buffer) == nil, "\(available) bytes")
            #expect(buffer.readerIndex == 3)
            #expect(buffer.readableBytes == available)
        }
    }

    @Test("read takes frames one at a time from a buffer holding several, and leaves the rest")
    func severalFrames() throws {
        var generator = SeededGenerator(seed: 16)
        let frames = (0..<5).map { _ in generator.frame(payloadLength: Int.random(in: 0...300, using: &generator)) }
        var buffer = ByteBuffer()
        for frame in frames { frame.write(to: &buffer) }
        let partial = generator.frame(payloadLength: 20).encoded()
        buffer.writeImmutableBuffer(partial.getSlice(at: 0, length: 17)!)

        for frame in frames {
            #expect(try Frame.read(from: &buffer) == frame)
        }
        #expect(try Frame.read(from: &buffer) == nil)
        #expect(buffer.readableBytes == 17)
    }

    @Test("read leaves the reader index alone when it throws")
    func errorConsumesNothing() {
        var generator = SeededGenerator(seed: 17)
        var bytes = generator.frame(payloadLength: 30).encoded().bytes
        bytes[20] ^= 0x10
        var buffer = ByteBuffer(bytes: bytes)
        #expect(throws: PacketError.self) { try Frame.read(from: &buffer) }
        #expect(buffer.readerIndex == 0)
        #expect(buffer.readableBytes == bytes.count)
    }
}

extension PacketError {
    var isBadChecksum: Bool {
        if case .badChecksum = self { return true }
        return false
    }
}
