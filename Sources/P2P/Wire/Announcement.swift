import NIOCore

/// The discovery datagram: who a peer is and where it serves, broadcast on the LAN.
///
/// ```
///  0       4       5      6          8                 24      26               30
/// +-------+-------+------+----------+-----------------+-------+----------------+
/// | "P2PD"|version| kind | checksum | peer id (16 B)  | port  | interval (ms)  |
/// +-------+-------+------+----------+-----------------+-------+----------------+
/// ```
///
/// All integers are big-endian. The checksum is RFC 1071 over the whole datagram with the
/// checksum field taken as zero. The interval tells receivers how often to expect the
/// sender, so each peer expires the others by their own announce interval, not its own.
/// A transfer port of zero marks an observer (`p2p peers`, `p2p ls`) that serves nothing.
///
/// In a swarm with a network key, the datagram is followed by an `AnnouncementSeal`
/// (timestamp, counter, the sender's own address and port) and an HMAC-SHA-256 tag over
/// everything before it, 84 bytes in all:
///
/// ```
///  0                                  30                       52                   84
/// +----------------------------------+------------------------+--------------------+
/// | announcement (above, 30 B)       | seal (22 B)            | HMAC tag (32 B)    |
/// +----------------------------------+------------------------+--------------------+
/// ```
///
/// Without a key there is no seal and no tag: anyone can forge any field, including the
/// source address the receiver sees.
public struct Announcement: Sendable, Equatable {
    /// Why a peer sends the datagram.
    public enum Kind: UInt8, Sendable, CustomStringConvertible {
        /// Sent once a peer starts: everyone who hears it answers with a unicast `alive`.
        case start = 1
        /// Sent every announce interval, and in answer to a `start`.
        case alive = 2
        /// Sent on graceful shutdown: receivers forget the peer at once.
        case stop = 3

        public var description: String {
            switch self {
            case .start: "start"
            case .alive: "alive"
            case .stop: "stop"
            }
        }
    }

    /// The four bytes every discovery datagram starts with.
    public static let magic: [UInt8] = Array("P2PD".utf8)
    /// The discovery protocol version this build speaks.
    public static let version: UInt8 = 1
    /// The datagram's length in bytes.
    public static let encodedLength = 30

    /// Why it is sent.
    public var kind: Kind
    /// The sender's id.
    public var peerID: PeerID
    /// The sender's TCP transfer port; zero for an observer.
    public var transferPort: UInt16
    /// How often the sender announces, in milliseconds.
    public var announceIntervalMilliseconds: UInt32

    /// Creates an announcement.
    /// - Parameters:
    ///   - kind: why it is sent.
    ///   - peerID: the sender's id.
    ///   - transferPort: the sender's transfer port, zero for an observer.
    ///   - announceIntervalMilliseconds: how often the sender announces.
    public init(kind: Kind, peerID: PeerID, transferPort: UInt16, announceIntervalMilliseconds: UInt32) {
        self.kind = kind
        self.peerID = peerID
        self.transferPort = transferPort
        self.announceIntervalMilliseconds = announceIntervalMilliseconds
    }

    /// The length of a keyed datagram: announcement, seal and tag.
    public static let keyedLength = encodedLength + AnnouncementSeal.encodedLength + NetworkKey.discoveryTagLength

    /// Encodes the keyed datagram: the announcement, the seal, and an HMAC-SHA-256 tag over
    /// both.
    /// - Parameters:
    ///   - key: the swarm's network key.
    ///   - seal: when, in what order and from where it is sent.
    ///   - allocator: where to get the buffer.
    /// - Returns: the datagram's bytes.
    public func encoded(
        key: NetworkKey,
        seal: AnnouncementSeal,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        var buffer = self.encoded(allocator: allocator)
        seal.write(to: &buffer)
        let tag = buffer.withUnsafeReadableBytes { key.tag(discovery: $0) }
        buffer.writeBytes(tag)
        return buffer
    }

    /// Parses a keyed datagram: it must carry a seal and a valid tag. The seal is returned
    /// for the receiver to check against the datagram's source, its clock and the counters
    /// it has seen.
    /// - Parameters:
    ///   - datagram: the bytes received.
    ///   - key: the swarm's network key.
    /// - Returns: the announcement and its seal.
    /// - Throws: `AnnouncementError`, `badTag` for a missing or wrong tag.
    public static func parse(
        _ datagram: ByteBuffer,
        key: NetworkKey
    ) throws(AnnouncementError) -> (announcement: Announcement, seal: AnnouncementSeal) {
        guard datagram.readableBytes == Self.keyedLength else { throw .badTag }
        let signedLength = Self.encodedLength + AnnouncementSeal.encodedLength
        let signed = datagram.getSlice(at: datagram.readerIndex, length: signedLength)!
        let tag = datagram.getBytes(at: datagram.readerIndex + signedLength, length: NetworkKey.discoveryTagLength)!
        guard signed.withUnsafeReadableBytes({ key.verify(tag: tag, discovery: $0) }) else { throw .badTag }
        let announcement = try Self.parse(datagram.getSlice(at: datagram.readerIndex, length: Self.encodedLength)!)
        let seal = AnnouncementSeal.read(from: datagram, at: datagram.readerIndex + Self.encodedLength)
        return (announcement, seal)
    }

    /// Encodes the datagram without a tag.
    /// - Parameter allocator: where to get the buffer.
    /// - Returns: the datagram's bytes.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: Self.encodedLength)
        buffer.writeBytes(Self.magic)
        buffer.writeInteger(Self.version)
        buffer.writeInteger(self.kind.rawValue)
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(self.peerID.high)
        buffer.writeInteger(self.peerID.low)
        buffer.writeInteger(self.transferPort)
        buffer.writeInteger(self.announceIntervalMilliseconds)
        let checksum = buffer.withUnsafeReadableBytes { InternetChecksum.checksum($0) }
        buffer.setInteger(checksum, at: buffer.readerIndex + 6)
        return buffer
    }

    /// Parses a datagram.
    /// - Parameter datagram: the bytes received.
    /// - Returns: the announcement.
    /// - Throws: `AnnouncementError` for anything but a well-formed datagram of this version.
    public static func parse(_ datagram: ByteBuffer) throws(AnnouncementError) -> Announcement {
        guard datagram.readableBytes == Self.encodedLength else {
            throw .wrongLength(datagram.readableBytes)
        }
        let start = datagram.readerIndex
        guard datagram.getBytes(at: start, length: 4)! == Self.magic else { throw .badMagic }
        let version = datagram.getInteger(at: start + 4, as: UInt8.self)!
        guard version == Self.version else { throw .unsupportedVersion(version) }
        let kindValue = datagram.getInteger(at: start + 5, as: UInt8.self)!
        // A correct checksum field makes the sum over the whole datagram 0xFFFF.
        let verification = datagram.withUnsafeReadableBytes { InternetChecksum.checksum($0) }
        // 0xFFFF is the other zero of one's-complement arithmetic: it verifies wherever the
        // encoder writes 0x0000, but no encoder writes it, so it is refused to keep one
        // encoding per announcement.
        guard verification == 0, datagram.getInteger(at: start + 6, as: UInt16.self)! != 0xFFFF else {
            throw .badChecksum
        }
        guard let kind = Kind(rawValue: kindValue) else { throw .unknownKind(kindValue) }
        let high = datagram.getInteger(at: start + 8, as: UInt64.self)!
        let low = datagram.getInteger(at: start + 16, as: UInt64.self)!
        let port = datagram.getInteger(at: start + 24, as: UInt16.self)!
        let interval = datagram.getInteger(at: start + 26, as: UInt32.self)!
        guard interval > 0 else { throw .zeroInterval }
        return Announcement(
            kind: kind,
            peerID: PeerID(high: high, low: low),
            transferPort: port,
            announceIntervalMilliseconds: interval
        )
    }
}

/// Why a datagram is not a discovery announcement. Such datagrams are dropped and counted.
public enum AnnouncementError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not exactly `Announcement.encodedLength` bytes.
    case wrongLength(Int)
    /// Does not start with "P2PD".
    case badMagic
    /// A discovery version this peer does not speak.
    case unsupportedVersion(UInt8)
    /// The checksum does not verify.
    case badChecksum
    /// A kind other than start, alive, stop.
    case unknownKind(UInt8)
    /// An announce interval of zero, which would expire the peer at once.
    case zeroInterval
    /// The swarm has a network key and the datagram's tag is missing or wrong.
    case badTag

    public var description: String {
        switch self {
        case .wrongLength(let length): "wrong datagram length \(length), expected \(Announcement.encodedLength)"
        case .badMagic: "bad magic"
        case .unsupportedVersion(let version): "unsupported discovery version \(version)"
        case .badChecksum: "bad checksum"
        case .unknownKind(let kind): "unknown announcement kind \(kind)"
        case .zeroInterval: "announce interval of zero"
        case .badTag: "missing or wrong network key tag"
        }
    }
}
