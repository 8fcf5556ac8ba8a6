import NIOCore
import NIOEmbedded
import Testing

@testable import P2P

@Suite("ServedFrameReader: small frames until established, a shared budget for unfinished ones")
struct ServedFrameReaderTests {
    /// A served connection's reader on an embedded channel, connected.
    static func channel(
        establishment: ServedFrameReader.Establishment,
        connections: ServedConnections = ServedConnections(limits: .init(), logger: StorageFixture.logger)
    ) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(
            handler: ServedFrameReader(
                decoder: FrameDecoder(),
                openingPayloadLimit: TransferServer.Limits.openingPayloadLimit,
                establishment: establishment,
                connections: connections,
                idleTimeout: .seconds(60),
                frameTimeout: .seconds(30)
            )
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    static func header(length: Int, type: FrameType = .hello) -> ByteBuffer {
        ByteBuffer(
            bytes: referenceHeader(length: UInt32(length), version: 1, type: type.rawValue, checksum: 0, chunkNumber: 0)
        )
    }

    @Test("a first frame over the opening limit is refused from its header; one at the limit is taken")
    func openingLimit() throws {
        let limit = TransferServer.Limits.openingPayloadLimit
        let refused = try Self.channel(establishment: .firstFrame)
        #expect(throws: PacketError.frameTooLarge(declared: limit + 1, maximum: limit)) {
            try refused.writeInbound(Self.header(length: limit + 1, type: .manifest))
        }
        #expect(!refused.isActive)
        var generator = SeededGenerator(seed: 40)
        let taken = try Self.channel(establishment: .firstFrame)
        let first = generator.frame(payloadLength: limit)
        try taken.writeInbound(first.encoded())
        #expect(try taken.readInbound(as: Frame.self) == first)
        // Established: the full size from now on, a chunk and the largest frame's header.
        let chunk = generator.frame(payloadLength: 256 * 1024 + 40)
        try taken.writeInbound(chunk.encoded())
        #expect(try taken.readInbound(as: Frame.self) == chunk)
        try taken.writeInbound(Self.header(length: Frame.defaultMaximumPayloadLength, type: .pushedChunk))
        #expect(taken.isActive)
        _ = try? taken.finish()
    }

    @Test("with a key, frames stay small through the handshake, until it has succeeded")
    func keyedOpeningLimit() throws {
        var generator = SeededGenerator(seed: 41)
        let channel = try Self.channel(establishment: .authentication)
        let hello = generator.frame(payloadLength: 32)
        try channel.writeInbound(hello.encoded())
        #expect(try channel.readInbound(as: Frame.self) == hello)
        #expect(throws: PacketError.self) {
            try channel.writeInbound(Self.header(length: 16 << 20))
        }
        #expect(!channel.isActive)

        let authenticated = try Self.channel(establishment: .authentication)
        try authenticated.writeInbound(hello.encoded())
        _ = try authenticated.readInbound(as: Frame.self)
        authenticated.pipeline.triggerUserOutboundEvent(SecureChannelHandler.Authenticated(), promise: nil)
        let large = generator.frame(payloadLength: 1 << 20)
        try authenticated.writeInbound(large.encoded())
        #expect(try authenticated.readInbound(as: Frame.self) == large)
        _ = try? authenticated.finish()
    }

    @Test("unfinished frames that would go over the shared budget close their connection and give it back")
    func budget() throws {
        let connections = ServedConnections(
            limits: .init(unfinishedFrameBudget: 1 << 20),
            logger: StorageFixture.logger
        )
        var generator = SeededGenerator(seed: 42)
        let opening = generator.frame(payloadLength: 0)
        var channels: [EmbeddedChannel] = []
        for _ in 0..<3 {
            let channel = try Self.channel(establishment: .firstFrame, connections: connections)
            try channel.writeInbound(opening.encoded())
            _ = try channel.readInbound(as: Frame.self)
            channels.append(channel)
        }
        // Half a megabyte of a 4 MiB frame each: two fit the 1 MiB budget (beyond their
        // free 16 KiB), the third does not.
        let partial = generator.frame(payloadLength: 4 << 20).encoded().getSlice(at: 0, length: 512 << 10)!
        try channels[0].writeInbound(partial)
        try channels[1].writeInbound(partial)
        #expect(connections.statistics.unfinishedFrameBytes == 2 * ((512 << 10) - (16 << 10)))
        #expect(throws: P2PError.self) { try channels[2].writeInbound(partial) }
        #expect(!channels[2].isActive && channels[0].isActive && channels[1].isActive)
        #expect(connections.statistics.closedOverBudget == 1)
        // A closed connection gives back what it held.
        _ = try? channels[0].finish()
        #expect(connections.statistics.unfinishedFrameBytes == (512 << 10) - (16 << 10))
        _ = try? channels[1].finish()
        #expect(connections.statistics.unfinishedFrameBytes == 0)
    }
}
