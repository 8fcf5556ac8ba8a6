import NIOCore
import NIOEmbedded
import NIOTestUtils
import P2P
import Testing

@Suite("FrameDecoder")
struct FrameDecoderTests {
    @Test("passes NIO's decoder verifier: input whole, byte by byte, and all at once")
    func verifier() throws {
        var generator = SeededGenerator(seed: 0xDEC0)
        var pairs: [(ByteBuffer, [Frame])] = []
        for length in [0, 1, 2, 3, 11, 12, 13, 64, 300] {
            let frame = generator.frame(payloadLength: length)
            pairs.append((frame.encoded(), [frame]))
        }
        // Two frames in one input come out as two.
        let first = generator.frame(payloadLength: 5)
        let second = generator.frame(payloadLength: 0)
        var both = first.encoded()
        second.write(to: &both)
        pairs.append((both, [first, second]))

        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            FrameDecoder(maximumPayloadLength: 1024)
        }
    }

    @Test("two frames back to back in one read decode as two")
    func backToBack() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder()))
        var generator = SeededGenerator(seed: 1)
        let first = generator.frame(payloadLength: 1000)
        let second = generator.frame(payloadLength: 13)
        var bytes = first.encoded()
        second.write(to: &bytes)

        try channel.writeInbound(bytes)
        #expect(try channel.readInbound(as: Frame.self) == first)
        #expect(try channel.readInbound(as: Frame.self) == second)
        #expect(try channel.readInbound(as: Frame.self) == nil)
        #expect(try channel.finish().isClean)
    }

    @Test("a frame split anywhere in two reads comes out once, after the second")
    func splitAnywhere() throws {
        var generator = SeededGenerator(seed: 2)
        let frame = generator.frame(payloadLength: 40)
        let encoded = frame.encoded()
        for split in 1..<encoded.readableBytes {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder()))
            try channel.writeInbound(encoded.getSlice(at: 0, length: split)!)
            #expect(try channel.readInbound(as: Frame.self) == nil, "split at \(split)")
            try channel.writeInbound(encoded.getSlice(at: split, length: encoded.readableBytes - split)!)
            #expect(try channel.readInbound(as: Frame.self) == frame, "split at \(split)")
            #expect(try channel.finish().isClean)
        }
    }

    @Test("chunk-sized and small frames, cut into reads of any size, come out whole and in order")
    func randomReads() throws {
        var generator = SeededGenerator(seed: 6)
        let frames = [262_176, 13, 0, 262_176, 1_048_600, 5, 70_000].map { generator.frame(payloadLength: $0) }
        var stream = ByteBuffer()
        for frame in frames { frame.write(to: &stream) }
        for round in 0..<4 {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder()))
            var rest = stream
            var decoded: [Frame] = []
            while rest.readableBytes > 0 {
                // Reads of a few bytes up to 100 KiB, as a socket delivers them.
                let size = min(rest.readableBytes, Int.random(in: 1...(round == 0 ? 600 : 100_000), using: &generator))
                try channel.writeInbound(rest.readSlice(length: size)!)
                while let frame = try channel.readInbound(as: Frame.self) { decoded.append(frame) }
            }
            #expect(decoded == frames, "round \(round)")
            #expect(try channel.finish().isClean)
        }
    }

    @Test("a stream that ends inside a payload being assembled: truncatedPayload")
    func endsInsidePayload() throws {
        var generator = SeededGenerator(seed: 7)
        let encoded = generator.frame(payloadLength: 100_000).encoded()
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder()))
        try channel.writeInbound(encoded.getSlice(at: 0, length: 60_012)!)
        #expect(try channel.readInbound(as: Frame.self) == nil)
        #expect(throws: PacketError.truncatedPayload(declared: 100_000, available: 60_000)) {
            channel.pipeline.fireChannelInactive()
            try channel.throwIfErrorCaught()
        }
        _ = try? channel.finish()
    }

    @Test("a corrupt payload assembled over several reads throws badChecksum once it is whole")
    func corruptAssembled() throws {
        var generator = SeededGenerator(seed: 8)
        var bytes = generator.frame(payloadLength: 300_000).encoded().bytes
        bytes[250_000] ^= 0x80
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder()))
        try channel.writeInbound(ByteBuffer(bytes: bytes[0..<100_000]))
        try channel.writeInbound(ByteBuffer(bytes: bytes[100_000..<200_000]))
        #expect {
            try channel.writeInbound(ByteBuffer(bytes: bytes[200_000...]))
        } throws: { error in
            guard let packetError = error as? PacketError, case .badChecksum = packetError else { return false }
            return true
        }
        #expect(try channel.readInbound(as: Frame.self) == nil)
        _ = try? channel.finish()
    }

    @Test(
        "an oversized length throws as soon as the header arrives",
        arguments: [(65, 64), (Int(UInt32.max), Frame.defaultMaximumPayloadLength)]
    )
    func oversized(declared: Int, maximum: Int) throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maximumPayloadLength: maximum)))
        let header = ByteBuffer(
            bytes: referenceHeader(
                length: UInt32(declared),
                version: 1,
                type: FrameType.chunkData.rawValue,
                checksum: 0,
                chunkNumber: 7
            )
        )
        #expect(throws: PacketError.frameTooLarge(declared: declared, maximum: maximum)) {
            try channel.writeInbound(header)
        }
        // Whatever follows is not decoded: the connection is to be closed.
        var generator = SeededGenerator(seed: 3)
        _ = try? channel.writeInbound(generator.buffer(100))
        #expect(try channel.readInbound(as: Frame.self) == nil)
        _ = try? channel.finish()
    }

    @Test("a corrupt frame throws badChecksum and produces nothing")
    func corrupt() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder()))
        var generator = SeededGenerator(seed: 4)
        var bytes = generator.frame(payloadLength: 100).encoded().bytes
        bytes[50] ^= 0x01
        #expect {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } throws: { error in
            guard let packetError = error as? PacketError, case .badChecksum = packetError else { return false }
            return true
        }
        #expect(try channel.readInbound(as: Frame.self) == nil)
        _ = try? channel.finish()
    }

    @Test("an unknown type or version throws")
    func unknownTypeAndVersion() throws {
        var generator = SeededGenerator(seed: 5)
        let encoded = generator.frame(payloadLength: 4).encoded().bytes
        for (index, value, error) in [(4, 9 as UInt8, PacketError.unsupportedVersion(9)), (5, 200, .unknownType(200))] {
            var bytes = encoded
            bytes[index] = value
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder()))
            #expect(throws: error) { try channel.writeInbound(ByteBuffer(bytes: bytes)) }
            _ = try? channel.finish()
        }
    }
}
