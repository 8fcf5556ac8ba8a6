import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import P2P

/// The sealed record format, frame by frame, between two handlers on embedded channels.
@Suite("Secure channel: sealed records")
struct SecureChannelHandlerTests {
    static let key = try! NetworkKey(secret: "correct horse battery")
    static let logger = Logger(label: "test.secure")

    /// A client and a server handler that have completed the handshake.
    struct Pair {
        let client = EmbeddedChannel()
        let server = EmbeddedChannel()

        init() throws {
            try self.server.pipeline.syncOperations.addHandler(
                SecureChannelHandler(
                    key: SecureChannelHandlerTests.key,
                    role: .server,
                    logger: SecureChannelHandlerTests.logger
                )
            )
            try self.client.pipeline.syncOperations.addHandler(
                SecureChannelHandler(
                    key: SecureChannelHandlerTests.key,
                    role: .client,
                    logger: SecureChannelHandlerTests.logger
                )
            )
            try self.server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try self.client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
            // client hello → server hello with proof → client proof.
            for _ in 0..<3 { try self.pump() }
        }

        /// Moves every frame written on one side to the other, both ways, once.
        func pump() throws {
            while let frame = try self.client.readOutbound(as: Frame.self) { try self.server.writeInbound(frame) }
            while let frame = try self.server.readOutbound(as: Frame.self) { try self.client.writeInbound(frame) }
        }
    }

    static func payload(_ length: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        for index in 0..<length { buffer.writeInteger(UInt8(truncatingIfNeeded: index &* 31 &+ 7)) }
        return buffer
    }

    @Test(
        "payloads of every record boundary arrive intact, each record 16 bytes longer",
        arguments: [0, 1, 16, 65_535, 65_536, 65_537, 3 * 65_536 + 16, 1 << 20, (1 << 20) + 17]
    )
    func roundTrip(length: Int) throws {
        let pair = try Pair()
        let sent = Frame(type: .chunkData, chunkNumber: 7, payload: Self.payload(length))
        try pair.client.writeAndFlush(sent).wait()
        let sealed = try #require(try pair.client.readOutbound(as: Frame.self))
        #expect(sealed.type == .chunkData && sealed.chunkNumber == 7)
        #expect(sealed.payload.readableBytes == length + 16 * SecureChannelHandler.recordCount(plaintextLength: length))
        if length >= 16 {
            #expect(
                sealed.payload.getSlice(at: sealed.payload.readerIndex, length: 16)
                    != sent.payload.getSlice(at: 0, length: 16)
            )
        }
        try pair.server.writeInbound(sealed)
        let opened = try #require(try pair.server.readInbound(as: Frame.self))
        #expect(opened == sent)
        // And the other way, with the other direction's key and counter.
        try pair.server.writeAndFlush(sent).wait()
        try pair.pump()
        #expect(try pair.client.readInbound(as: Frame.self) == sent)
    }

    @Test("lengths no record sequence can have are refused before any opening")
    func impossibleLengths() {
        let sealedRecord = SecureChannelHandler.recordLength + 16
        #expect(SecureChannelHandler.plaintextLength(sealedLength: 0) == nil)
        #expect(SecureChannelHandler.plaintextLength(sealedLength: 15) == nil)
        #expect(SecureChannelHandler.plaintextLength(sealedLength: 16) == 0)
        #expect(SecureChannelHandler.plaintextLength(sealedLength: sealedRecord) == SecureChannelHandler.recordLength)
        #expect(SecureChannelHandler.plaintextLength(sealedLength: sealedRecord + 15) == nil)
        #expect(
            SecureChannelHandler.plaintextLength(sealedLength: sealedRecord + 16) == SecureChannelHandler.recordLength
        )
        for length in [0, 1, 65_535, 65_536, 65_537, 1 << 20, 16 << 20] {
            let sealed = length + 16 * SecureChannelHandler.recordCount(plaintextLength: length)
            #expect(SecureChannelHandler.plaintextLength(sealedLength: sealed) == length)
        }
    }

    /// Sends one sealed frame of three records, changed by `tamper`, and expects the server
    /// to refuse it and close.
    func expectRefused(_ tamper: (inout Frame) -> Void) throws {
        let pair = try Pair()
        try pair.client.writeAndFlush(Frame(type: .chunkData, chunkNumber: 3, payload: Self.payload(3 * 65_536))).wait()
        var sealed = try #require(try pair.client.readOutbound(as: Frame.self))
        tamper(&sealed)
        #expect(throws: P2PError.self) { try pair.server.writeInbound(sealed) }
        #expect(try pair.server.readInbound(as: Frame.self) == nil)
        #expect(!pair.server.isActive)
    }

    @Test("a flipped bit in any record closes the connection")
    func flippedBit() throws {
        for offset in [0, 65_536 + 16 + 5, 3 * (65_536 + 16) - 1] {
            try self.expectRefused { frame in
                let index = frame.payload.readerIndex + offset
                frame.payload.setInteger(frame.payload.getInteger(at: index, as: UInt8.self)! ^ 0x40, at: index)
            }
        }
    }

    @Test("a frame cut after a whole record, or with another chunk number, closes the connection")
    func truncatedOrMoved() throws {
        try self.expectRefused { frame in
            frame.payload.moveWriterIndex(to: frame.payload.readerIndex + 2 * (65_536 + 16))
        }
        try self.expectRefused { frame in frame.chunkNumber = 4 }
        try self.expectRefused { frame in frame.type = .chunkRequest }
    }

    @Test("a frame replayed after the next one fails: records are numbered across frames")
    func replayed() throws {
        let pair = try Pair()
        try pair.client.writeAndFlush(Frame(type: .chunkData, chunkNumber: 1, payload: Self.payload(100))).wait()
        let first = try #require(try pair.client.readOutbound(as: Frame.self))
        try pair.server.writeInbound(first)
        #expect(try pair.server.readInbound(as: Frame.self) != nil)
        #expect(throws: P2PError.self) { try pair.server.writeInbound(first) }
        #expect(!pair.server.isActive)
    }
}
