import Logging
import NIOCore
import NIOPosix

/// What every transfer connection of a peer is made with, built once at start and handed
/// down to the server, the downloader and the distributor: the swarm's key, the largest
/// frame payload, the event loops, and the logger.
public struct TransferSettings: Sendable {
    /// The swarm's key: every connection authenticates with it and is sealed; `nil` for
    /// an open swarm.
    public var networkKey: NetworkKey?
    /// The largest frame payload accepted on a connection.
    public var maximumPayloadLength: Int
    /// The event loops connections run on.
    public var group: any EventLoopGroup
    /// Where connections log.
    public var logger: Logger

    /// Creates settings.
    /// - Parameters:
    ///   - networkKey: the swarm's key, if any.
    ///   - maximumPayloadLength: the largest frame payload accepted.
    ///   - group: the event loops.
    ///   - logger: where to log.
    public init(
        networkKey: NetworkKey? = nil,
        maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.networkKey = networkKey
        self.maximumPayloadLength = maximumPayloadLength
        self.group = group
        self.logger = logger
    }

    /// The same settings with frames limited to `limit` bytes of payload (at most the
    /// limit already in force): for connections whose answers are known to be small.
    func limitingPayload(to limit: Int) -> TransferSettings {
        var settings = self
        settings.maximumPayloadLength = min(self.maximumPayloadLength, limit)
        return settings
    }
}
