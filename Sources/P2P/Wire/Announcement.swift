import NIOCore

/// The discovery datagram: who a peer is, where it serves, what it is called, and (peer
/// exchange) where some peers it hears are, broadcast on the LAN.
///
/// ```
///  0       4       5      6          8                 24      26               30
/// +-------+-------+------+----------+-----------------+-------+----------------+
/// | "P2PD"|version| kind | checksum | peer id (16 B)  | port  | interval (ms)  |
/// +-------+-------+------+----------+-----------------+-------+----------------+
///  30         31                 31+n      32+n
/// +----------+------------------+---------+----------------------------------+
/// | name len | name (n <= 64 B) | count c | c x (IPv4 address 4 B, port 2 B) |
/// +----------+------------------+---------+----------------------------------+
/// ```
///
/// All integers are big-endian. The checksum is RFC 1071 over the whole datagram with the
/// checksum field taken as zero. The interval tells receivers how often to expect the
/// sender, so each peer expires the others by their own announce interval, not its own.
/// A transfer port of zero marks an observer (`p2p peers`, `p2p ls`) that serves nothing.
/// The name (UTF-8, `PeerName` rules; length zero for none) is the sender's device name.
/// The addresses, at most `maximumExchangedPeers`, are discovery addresses of peers the
/// sender hears itself (`PeerExchange`): a receiver may ask them, never trusts them.
/// Anything else (a longer name, more addresses, a zero address or port, bytes left
/// over) and the datagram is refused whole.
///
/// In a swarm with a network key, the datagram is followed by an `AnnouncementSeal`
/// (timestamp, counter, the sender's own address and port) and an HMAC-SHA-256 tag over
/// everything before it:
///
/// ```
/// +----------------------------------+------------------------+--------------------+
/// | announcement (above, 32-288 B)   | seal (22 B)            | HMAC tag (32 B)    |
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
    /// A discovery address a peer passes on to others (peer exchange).
    public struct PeerAddress: Sendable, Hashable {
        /// The IPv4 address, host byte order; never zero.
        public var address: UInt32
        /// The UDP port; never zero.
        public var port: UInt16

        /// Creates an address.
        /// - Parameters:
        ///   - address: IPv4, host byte order.
        ///   - port: the UDP port.
        public init(address: UInt32, port: UInt16) {
            self.address = address
            self.port = port
        }

        /// The address of a socket, if it is IPv4 with a port.
        /// - Parameter socketAddress: the socket address.
        public init?(_ socketAddress: SocketAddress) {
            guard let address = NetworkScope.ipv4(socketAddress), let port = socketAddress.port,
                address != 0, (1...65535).contains(port)
            else { return nil }
            self.init(address: address, port: UInt16(port))
        }

        /// As a socket address.
        public var socketAddress: SocketAddress? {
            try? SocketAddress(ipAddress: NetworkScope.dottedQuad(self.address), port: Int(self.port))
        }
    }

    /// The discovery protocol version this build speaks: 2 added the name and the peer
    /// exchange to version 1's fixed 30 bytes.
    public static let version: UInt8 = 2
    /// The bytes before the name: magic to interval.
    public static let headerLength = 30
    /// The shortest datagram: no name, no addresses.
    public static let minimumLength = headerLength + 2
    /// The most addresses one datagram carries.
    public static let maximumExchangedPeers = 32
    /// The longest datagram: the longest name and the most addresses.
    public static let maximumLength = minimumLength + PeerName.maximumLength + 6 * maximumExchangedPeers
    /// What a keyed datagram adds after the announcement: the seal and the tag.
    public static let sealedTrailerLength = AnnouncementSeal.encodedLength + NetworkKey.discoveryTagLength

    /// Why it is sent.
    public var kind: Kind
    /// The sender's id.
    public var peerID: PeerID
    /// The sender's TCP transfer port; zero for an observer.
    public var transferPort: UInt16
    /// How often the sender announces, in milliseconds.
    public var announceIntervalMilliseconds: UInt32
    /// The sender's device name, if it gives one.
    public var name: PeerName?
    /// Discovery addresses of peers the sender hears itself, at most
    /// `maximumExchangedPeers` (extra ones are not encoded).
    public var peers: [PeerAddress]

    /// Creates an announcement.
    /// - Parameters:
    ///   - kind: why it is sent.
    ///   - peerID: the sender's id.
    ///   - transferPort: the sender's transfer port, zero for an observer.
    ///   - announceIntervalMilliseconds: how often the sender announces.
    ///   - name: the sender's device name.
    ///   - peers: discovery addresses of peers the sender hears (peer exchange).
    public init(
        kind: Kind,
        peerID: PeerID,
        transferPort: UInt16,
        announceIntervalMilliseconds: UInt32,
        name: PeerName? = nil,
        peers: [PeerAddress] = []
    ) {
        self.kind = kind
        self.peerID = peerID
        self.transferPort = transferPort
        self.announceIntervalMilliseconds = announceIntervalMilliseconds
        self.name = name
        self.peers = peers
    }

    /// The length of the datagram without a seal.
    public var encodedLength: Int {
        Self.minimumLength + (self.name?.value.utf8.count ?? 0) + 6 * min(self.peers.count, Self.maximumExchangedPeers)
    }

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
        // Without a valid body length there is nothing to check a tag against: treated as
        // a datagram without the key's tag.
        guard let bodyLength = try? Self.bodyLength(of: datagram),
            datagram.readableBytes == bodyLength + Self.sealedTrailerLength
        else { throw .badTag }
        let signedLength = bodyLength + AnnouncementSeal.encodedLength
        let signed = datagram.getSlice(at: datagram.readerIndex, length: signedLength)!
        let tag = datagram.getBytes(at: datagram.readerIndex + signedLength, length: NetworkKey.discoveryTagLength)!
        guard signed.withUnsafeReadableBytes({ key.verify(tag: tag, discovery: $0) }) else { throw .badTag }
        let announcement = try Self.parse(datagram.getSlice(at: datagram.readerIndex, length: bodyLength)!)
        let seal = AnnouncementSeal.read(from: datagram, at: datagram.readerIndex + bodyLength)
        return (announcement, seal)
    }

    /// Encodes the datagram without a tag.
    /// - Parameter allocator: where to get the buffer.
    /// - Returns: the datagram's bytes.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: self.encodedLength + Self.sealedTrailerLength)
        buffer.writeBytes(Self.magic)
        buffer.writeInteger(Self.version)
        buffer.writeInteger(self.kind.rawValue)
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(self.peerID.high)
        buffer.writeInteger(self.peerID.low)
        buffer.writeInteger(self.transferPort)
        buffer.writeInteger(self.announceIntervalMilliseconds)
        let name = Array(self.name?.value.utf8 ?? "".utf8)
        buffer.writeInteger(UInt8(name.count))
        buffer.writeBytes(name)
        let peers = self.peers.prefix(Self.maximumExchangedPeers)
        buffer.writeInteger(UInt8(peers.count))
        for peer in peers {
            buffer.writeInteger(peer.address)
            buffer.writeInteger(peer.port)
        }
        let checksum = buffer.withUnsafeReadableBytes { InternetChecksum.checksum($0) }
        buffer.setInteger(checksum, at: buffer.readerIndex + 6)
        return buffer
    }

    /// The length of the announcement at the start of `datagram`, from its name length
    /// and address count, after checking the magic and the version.
    /// - Throws: `AnnouncementError` if the datagram is too short to say, or says too much.
    static func bodyLength(of datagram: ByteBuffer) throws(AnnouncementError) -> Int {
        let start = datagram.readerIndex
        let available = datagram.readableBytes
        guard available >= 5 else { throw .wrongLength(available) }
        guard datagram.getBytes(at: start, length: 4)! == Self.magic else { throw .badMagic }
        let version = datagram.getInteger(at: start + 4, as: UInt8.self)!
        guard version == Self.version else { throw .unsupportedVersion(version) }
        guard available >= Self.minimumLength else { throw .wrongLength(available) }
        let nameLength = Int(datagram.getInteger(at: start + Self.headerLength, as: UInt8.self)!)
        guard nameLength <= PeerName.maximumLength else { throw .badName }
        let countOffset = Self.headerLength + 1 + nameLength
        guard available > countOffset else { throw .wrongLength(available) }
        let count = Int(datagram.getInteger(at: start + countOffset, as: UInt8.self)!)
        guard count <= Self.maximumExchangedPeers else { throw .tooManyPeers(count) }
        return countOffset + 1 + 6 * count
    }

    /// Parses a datagram.
    /// - Parameter datagram: the bytes received.
    /// - Returns: the announcement.
    /// - Throws: `AnnouncementError` for anything but a well-formed datagram of this version.
    public static func parse(_ datagram: ByteBuffer) throws(AnnouncementError) -> Announcement {
        let length = try Self.bodyLength(of: datagram)
        guard datagram.readableBytes == length else {
            // A keyed datagram reaching a peer without the key: said apart, so that the
            // peer can tell its user.
            if datagram.readableBytes == length + Self.sealedTrailerLength { throw .sealed }
            throw .wrongLength(datagram.readableBytes)
        }
        let start = datagram.readerIndex
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
        let nameLength = Int(datagram.getInteger(at: start + Self.headerLength, as: UInt8.self)!)
        var name: PeerName? = nil
        if nameLength > 0 {
            let bytes = datagram.getBytes(at: start + Self.headerLength + 1, length: nameLength)!
            guard let text = String(validating: bytes, as: UTF8.self), let valid = try? PeerName(text) else {
                throw .badName
            }
            name = valid
        }
        let countOffset = start + Self.headerLength + 1 + nameLength
        let count = Int(datagram.getInteger(at: countOffset, as: UInt8.self)!)
        var peers: [PeerAddress] = []
        peers.reserveCapacity(count)
        for index in 0..<count {
            let offset = countOffset + 1 + 6 * index
            let address = datagram.getInteger(at: offset, as: UInt32.self)!
            let peerPort = datagram.getInteger(at: offset + 4, as: UInt16.self)!
            guard address != 0, peerPort != 0 else { throw .badPeerAddress }
            peers.append(PeerAddress(address: address, port: peerPort))
        }
        return Announcement(
            kind: kind,
            peerID: PeerID(high: high, low: low),
            transferPort: port,
            announceIntervalMilliseconds: interval,
            name: name,
            peers: peers
        )
    }
}

/// Why a datagram is not a discovery announcement. Such datagrams are dropped and counted.
public enum AnnouncementError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not as many bytes as the datagram's name length and address count say.
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
    /// A name longer than `PeerName.maximumLength`, not UTF-8, or against the name rules.
    case badName
    /// More addresses than `Announcement.maximumExchangedPeers`.
    case tooManyPeers(Int)
    /// An exchanged address or port of zero.
    case badPeerAddress
    /// A keyed datagram (a seal and a tag follow), and this peer has no key.
    case sealed

    public var description: String {
        switch self {
        case .wrongLength(let length): "wrong datagram length \(length)"
        case .badMagic: "bad magic"
        case .unsupportedVersion(let version): "unsupported discovery version \(version)"
        case .badChecksum: "bad checksum"
        case .unknownKind(let kind): "unknown announcement kind \(kind)"
        case .zeroInterval: "announce interval of zero"
        case .badTag: "missing or wrong network key tag"
        case .badName: "bad peer name"
        case .tooManyPeers(let count): "\(count) exchanged peers, more than \(Announcement.maximumExchangedPeers)"
        case .badPeerAddress: "an exchanged peer address or port of zero"
        case .sealed: "a keyed datagram, and this peer has no network key"
        }
    }
}
