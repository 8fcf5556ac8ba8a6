import NIOCore

/// Where and when a keyed discovery datagram was sent, authenticated with it.
///
/// The HMAC tag of a keyed datagram covers the seal as well as the announcement, so a
/// datagram recorded from a member cannot be replayed from another address (the claimed
/// source must be the datagram's real source), nor later (the timestamp must be within a
/// window of the receiver's clock), nor again (the counter must be above the last one
/// accepted from that id; `PeerRoster` checks that).
///
/// ```
///  0                    8                   16           20        22
/// +--------------------+-------------------+------------+---------+
/// | timestamp (ms, 8 B)| counter (8 B)     | IPv4 (4 B) | port    |
/// +--------------------+-------------------+------------+---------+
/// ```
/// All big-endian; the timestamp is milliseconds since the Unix epoch, the counter strictly
/// increases over one run of the sender, the address and port are the sender's own.
public struct AnnouncementSeal: Sendable, Equatable {
    /// Bytes of the seal on the wire.
    public static let encodedLength = 22
    /// How far, either way, a timestamp may be from the receiver's clock: clocks on a LAN
    /// agree within seconds, and a replay has at most this long to be tried.
    public static let defaultWindowMilliseconds: Int64 = 30_000

    /// When it was sent, in milliseconds since the Unix epoch.
    public var timestampMilliseconds: UInt64
    /// The sender's count of datagrams sent this run, strictly increasing.
    public var counter: UInt64
    /// The sender's IPv4 address, host byte order, as it sent the datagram.
    public var sourceAddress: UInt32
    /// The sender's UDP port.
    public var sourcePort: UInt16

    /// Creates a seal.
    /// - Parameters:
    ///   - timestampMilliseconds: when it is sent, ms since the epoch.
    ///   - counter: the sender's strictly increasing count.
    ///   - sourceAddress: the sender's IPv4 address, host byte order.
    ///   - sourcePort: the sender's UDP port.
    public init(timestampMilliseconds: UInt64, counter: UInt64, sourceAddress: UInt32, sourcePort: UInt16) {
        self.timestampMilliseconds = timestampMilliseconds
        self.counter = counter
        self.sourceAddress = sourceAddress
        self.sourcePort = sourcePort
    }

    /// Why a sealed datagram is refused although its tag is right.
    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// It came from another address or port than the one it names: a replay from elsewhere.
        case sourceMismatch
        /// Its timestamp is too far from the receiver's clock: a replay, or a wrong clock.
        case outsideWindow

        public var description: String {
            switch self {
            case .sourceMismatch: "sent from another address than it names"
            case .outsideWindow: "timestamp outside the accepted window"
            }
        }
    }

    /// Checks the seal against how the datagram arrived.
    /// - Parameters:
    ///   - source: the datagram's real source.
    ///   - nowMilliseconds: the receiver's clock, ms since the epoch.
    ///   - windowMilliseconds: how far either way the timestamp may be.
    /// - Returns: the problem, or `nil` if the seal fits.
    public func problem(
        receivedFrom source: SocketAddress,
        nowMilliseconds: UInt64,
        windowMilliseconds: Int64 = AnnouncementSeal.defaultWindowMilliseconds
    ) -> Problem? {
        guard NetworkScope.ipv4(source) == self.sourceAddress, source.port == Int(self.sourcePort) else {
            return .sourceMismatch
        }
        let distance =
            nowMilliseconds > self.timestampMilliseconds
            ? nowMilliseconds - self.timestampMilliseconds : self.timestampMilliseconds - nowMilliseconds
        guard distance <= UInt64(windowMilliseconds) else { return .outsideWindow }
        return nil
    }

    /// Appends the seal's bytes.
    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(self.timestampMilliseconds)
        buffer.writeInteger(self.counter)
        buffer.writeInteger(self.sourceAddress)
        buffer.writeInteger(self.sourcePort)
    }

    /// Reads a seal at `offset`; the caller has checked that the bytes are there.
    static func read(from buffer: ByteBuffer, at offset: Int) -> AnnouncementSeal {
        AnnouncementSeal(
            timestampMilliseconds: buffer.getInteger(at: offset, as: UInt64.self)!,
            counter: buffer.getInteger(at: offset + 8, as: UInt64.self)!,
            sourceAddress: buffer.getInteger(at: offset + 16, as: UInt32.self)!,
            sourcePort: buffer.getInteger(at: offset + 20, as: UInt16.self)!
        )
    }
}
