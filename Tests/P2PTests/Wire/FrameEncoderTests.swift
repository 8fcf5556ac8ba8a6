import NIOCore
import NIOEmbedded
import P2P
import Testing

@Suite("FrameEncoder")
struct FrameEncoderTests {
    @Test("writes a header and the payload as its own buffer; the bytes parse back", arguments: [1, 13, 65_536])
    func encodesFrame(payloadLength: Int) throws {
        let channel = EmbeddedChannel(handler: FrameEncoder())
        var generator = SeededGenerator(seed: UInt64(payloadLength))
        let frame = generator.frame(payloadLength: payloadLength)

        try channel.writeOutbound(frame)
        var header = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let payload = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)

        #expect(header.readableBytes == Frame.headerLength)
        #expect(payload == frame.payload)
        header.writeImmutableBuffer(payload)
        #expect(try Frame.parse(header) == frame)
        #expect(try channel.finish().isClean)
    }

    @Test("a frame without payload is one buffer of just the header")
    func emptyPayload() throws {
        let channel = EmbeddedChannel(handler: FrameEncoder())
        let frame = Frame(type: .inventoryRequest, chunkNumber: 42)
        try channel.writeOutbound(frame)
        let bytes = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(bytes.readableBytes == Frame.headerLength)
        #expect(try Frame.parse(bytes) == frame)
        #expect(try channel.finish().isClean)
    }

    @Test("many frames written in a row read back in order from the byte stream")
    func stream() throws {
        let channel = EmbeddedChannel(handler: FrameEncoder())
        var generator = SeededGenerator(seed: 77)
        let frames = (0..<50).map { _ in generator.frame(payloadLength: Int.random(in: 0...2000, using: &generator)) }
        for frame in frames {
            // The write promise completes for frames with and without payload.
            let written = channel.write(frame)
            channel.flush()
            try written.wait()
        }
        var bytes = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) {
            bytes.writeBuffer(&part)
        }
        for frame in frames {
            #expect(try Frame.read(from: &bytes) == frame)
        }
        #expect(bytes.readableBytes == 0)
        #expect(try channel.finish().isClean)
    }
}
