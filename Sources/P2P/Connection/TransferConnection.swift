import Logging
import NIOCore
import NIOPosix

/// The channel set-up both ends of a transfer connection share.
public enum TransferConnection {
    /// What a connection of a keyed swarm needs: the key, which end it is, where to log
    /// refusals.
    public struct Security: Sendable {
        /// The swarm's key.
        public var key: NetworkKey
        /// Whether this end accepted the connection.
        public var isServer: Bool
        /// Where refused handshakes are logged.
        public var logger: Logger

        /// Creates the settings.
        public init(key: NetworkKey, isServer: Bool, logger: Logger) {
            self.key = key
            self.isServer = isServer
            self.logger = logger
        }
    }

    /// Reads of up to 256 KiB, a chunk frame's size: a chunk arrives in one or two reads
    /// rather than many of NIO's default 64 KiB, which saves decode passes and copies. Not
    /// larger: a read's buffer stays alive while a partial frame waits in it for the next
    /// read, and a downloader in a crowd has a connection per partner, each of which could
    /// hold that much (docs/benchmark-log.md, probes AH–AK).
    public static let receiveAllocator = AdaptiveRecvByteBufferAllocator(
        minimum: 64 * 1024,
        initial: 256 * 1024,
        maximum: 256 * 1024
    )

    /// Reads of a served connection: 16 KiB to begin with, up to 256 KiB. It receives
    /// requests (a few dozen bytes) and now and then a pushed chunk, and every read is held
    /// in full before the frames in it are counted against the server's budget for
    /// unfinished frames: large reads would let many connections each hold a megabyte
    /// or two beyond it.
    static let servedReceiveAllocator = AdaptiveRecvByteBufferAllocator(
        minimum: 4 * 1024,
        initial: 16 * 1024,
        maximum: 256 * 1024
    )

    /// Adds the frame codec to a client's connection and wraps the channel for async use.
    /// - Parameters:
    ///   - channel: a connected TCP channel, on its event loop.
    ///   - maximumPayloadLength: the largest frame payload accepted.
    ///   - security: the key and role, for a keyed swarm.
    /// - Returns: the async channel of frames.
    /// - Throws: if the pipeline cannot be set up.
    public static func configure(
        _ channel: any Channel,
        maximumPayloadLength: Int,
        security: Security? = nil
    ) throws -> NIOAsyncChannel<Frame, Frame> {
        try self.addHandlers(to: channel, maximumPayloadLength: maximumPayloadLength, security: security)
        return try self.wrap(channel, isServed: false)
    }

    /// What a served connection is set up with besides the codec.
    struct Served {
        /// The server's connections: the shared budget, the counts.
        var connections: ServedConnections
        /// The server's limits: request gate, deadlines.
        var limits: TransferServer.Limits
    }

    /// Adds the frame codec (and, for a keyed swarm, the secure channel; for a served
    /// connection, the request gate and the bounds on unfinished frames): the first half
    /// of `configure`.
    static func addHandlers(
        to channel: any Channel,
        maximumPayloadLength: Int,
        security: Security?,
        served: Served? = nil
    ) throws {
        // Opening a sealed frame writes its plaintext into a new buffer: the decoder need
        // not copy the sealed payload out of the receive buffer first. Chunks are placed
        // where a direct write can take them (`ChunkBufferAllocator`).
        let decoder = FrameDecoder(
            maximumPayloadLength: maximumPayloadLength,
            copiesPayloads: security == nil,
            largePayloadBuffer: ChunkBufferAllocator.buffer(exactCapacity:)
        )
        if let served {
            try channel.pipeline.syncOperations.addHandler(
                ServedFrameReader(
                    decoder: decoder,
                    openingPayloadLimit: TransferServer.Limits.openingPayloadLimit,
                    establishment: security == nil ? .firstFrame : .authentication,
                    connections: served.connections,
                    idleTimeout: Duration(served.limits.idleTimeout),
                    frameTimeout: Duration(served.limits.frameTimeout)
                )
            )
        } else {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
        }
        try channel.pipeline.syncOperations.addHandler(FrameEncoder())
        if let security {
            try channel.pipeline.syncOperations.addHandler(
                SecureChannelHandler(
                    key: security.key,
                    role: security.isServer ? .server : .client,
                    logger: security.logger
                )
            )
        }
        if let served {
            try channel.pipeline.syncOperations.addHandler(
                RequestGate(
                    maximumQueued: served.limits.maximumRequestsInFlight,
                    maximumUnsentBytes: TransferServer.Limits.maximumUnsentAnswerBytes
                )
            )
        }
    }

    /// Wraps a channel whose handlers are in place for async use: the second half of
    /// `configure`. On the channel's event loop; the caller must run the result's
    /// `executeThenClose`.
    static func wrap(_ channel: any Channel, isServed: Bool) throws -> NIOAsyncChannel<Frame, Frame> {
        var configuration = NIOAsyncChannel<Frame, Frame>.Configuration(isOutboundHalfClosureEnabled: true)
        if isServed {
            configuration.backPressureStrategy = RequestGate.asyncChannelBackPressure
        } else {
            // A client's receiver takes frames as they come; four waiting (1 MiB of
            // chunks) keep it fed, and a downloader with many peers holds four each.
            configuration.backPressureStrategy = .init(lowWatermark: 2, highWatermark: 4)
        }
        return try NIOAsyncChannel<Frame, Frame>(wrappingChannelSynchronously: channel, configuration: configuration)
    }
}
