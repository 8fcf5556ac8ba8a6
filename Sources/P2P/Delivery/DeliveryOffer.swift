import NIOCore

/// What a delivery brings: named by kind, id, name and total size, so that a receiver can
/// decide on it (quota, free space, an existing file) before it fetches a byte.
public struct DeliveryItem: Sendable, Hashable {
    /// What sort of thing the id names. The values are on the wire.
    public enum Kind: UInt8, Sendable, Hashable {
        /// One file: the id is its manifest's SHA-256.
        case file = 1
        /// A folder (a collection): the id is its collection manifest's SHA-256, the size
        /// its files' total.
        case collection = 2
    }

    /// What sort of thing it is.
    public var kind: Kind
    /// Its id (for a file, the file id).
    public var id: FileID
    /// The name it is written under in the receiver's downloads folder.
    public var name: FileName
    /// Its total size in bytes.
    public var size: UInt64
    /// For a folder, the file id of its pack (`CollectionPack`): its small files end to
    /// end as one swarm file, which the sender offers beside the folder. The folder's
    /// files are checked against the folder's manifest whatever the pack holds.
    public var pack: FileID?

    /// Creates an item.
    public init(kind: Kind = .file, id: FileID, name: FileName, size: UInt64, pack: FileID? = nil) {
        self.kind = kind
        self.id = id
        self.name = name
        self.size = size
        self.pack = pack
    }
}

/// A sender's offer of one item to one target (frame `delivery-offer`).
///
/// The offer number is fresh for every offer: the target's receipt covers it, so a receipt
/// proves this delivery and no other.
public struct DeliveryOffer: Sendable, Hashable {
    /// Bytes of the offer number.
    public static let numberLength = 16

    /// Random bytes chosen by the sender for this offer.
    public var number: [UInt8]
    /// The offering peer.
    public var sender: PeerID
    /// The peer the offer is meant for.
    public var target: PeerID
    /// What is offered.
    public var item: DeliveryItem
    /// How many more seconds the sender waits for it (0: no limit): the target gives up
    /// then too, keeping what it has for the next offer.
    public var waitSeconds: Int

    /// Creates an offer.
    public init(number: [UInt8], sender: PeerID, target: PeerID, item: DeliveryItem, waitSeconds: Int = 0) {
        self.number = number
        self.sender = sender
        self.target = target
        self.item = item
        self.waitSeconds = waitSeconds
    }

    /// A fresh offer number from the system's secure generator.
    public static func freshNumber() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<Self.numberLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The payload: number, sender id, target id, kind u8, item id, size u64, name length
    /// u16, name, then for a folder with a pack the pack's file id (the wait is in the
    /// frame header).
    func payload(allocator: ByteBufferAllocator) -> ByteBuffer {
        let name = Array(self.item.name.value.utf8)
        var payload = allocator.buffer(capacity: 16 + 32 + 1 + 32 + 8 + 2 + name.count + FileID.byteCount)
        payload.writeBytes(self.number)
        payload.writePeerID(self.sender)
        payload.writePeerID(self.target)
        payload.writeInteger(self.item.kind.rawValue)
        payload.writeBytes(self.item.id.bytes)
        payload.writeInteger(self.item.size)
        payload.writeInteger(UInt16(name.count))
        payload.writeBytes(name)
        if let pack = self.item.pack { payload.writeBytes(pack.bytes) }
        return payload
    }

    /// Reads an offer's payload.
    /// - Parameters:
    ///   - payload: the frame's payload.
    ///   - waitSeconds: the frame header's number.
    ///   - bad: the error for a payload that does not parse, from what is wrong.
    /// - Returns: the offer.
    static func parse(
        _ payload: inout ByteBuffer,
        waitSeconds: Int,
        bad: (String) -> P2PError
    ) throws(P2PError) -> DeliveryOffer {
        guard let number = payload.readBytes(length: Self.numberLength),
            let sender = payload.readPeerID(),
            let target = payload.readPeerID(),
            let kindValue = payload.readInteger(as: UInt8.self),
            let idBytes = payload.readBytes(length: FileID.byteCount),
            let size = payload.readInteger(as: UInt64.self),
            let nameLength = payload.readInteger(as: UInt16.self),
            let nameBytes = payload.readBytes(length: Int(nameLength))
        else { throw bad("truncated offer") }
        guard let kind = DeliveryItem.Kind(rawValue: kindValue) else { throw bad("unknown kind \(kindValue)") }
        let name: FileName
        do { name = try FileName(utf8: nameBytes) } catch { throw bad(error.message) }
        var pack: FileID? = nil
        if kind == .collection, payload.readableBytes == FileID.byteCount {
            pack = FileID(bytes: payload.readBytes(length: FileID.byteCount)!)
        }
        guard payload.readableBytes == 0 else { throw bad("\(payload.readableBytes) trailing bytes") }
        return DeliveryOffer(
            number: number,
            sender: sender,
            target: target,
            item: DeliveryItem(kind: kind, id: FileID(bytes: idBytes)!, name: name, size: size, pack: pack),
            waitSeconds: waitSeconds
        )
    }
}

/// Why a target does not take (or did not finish) a delivery, with what to do about it.
public struct DeliveryRefusal: Sendable, Hashable, Error, CustomStringConvertible {
    /// The reason, on the wire.
    public enum Reason: UInt8, Sendable, Hashable {
        /// The target does not take deliveries (`serve --accept` is off).
        case notAccepting = 1
        /// The target has no network key, so it cannot tell who sends.
        case noKey = 2
        /// The delivery would pass the target's `--accept-max-bytes`.
        case quota = 3
        /// The target's disk has too little room for it.
        case diskSpace = 4
        /// A different file is already at the name in the target's downloads folder.
        case fileExists = 5
        /// The offer names another peer as its target.
        case notAddressed = 6
        /// The target accepted but could not finish: the fetch failed or timed out.
        case failed = 7
        /// The target is fetching this item for another offer already (a sender started
        /// again before the target noticed the first one had gone, or a second sender):
        /// offer it again shortly.
        case busy = 8
    }

    /// The reason.
    public var reason: Reason
    /// What happened, in words for the sender's user.
    public var message: String

    /// Creates a refusal.
    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { self.message }
}

extension ByteBuffer {
    mutating func writePeerID(_ id: PeerID) {
        self.writeInteger(id.high)
        self.writeInteger(id.low)
    }

    mutating func readPeerID() -> PeerID? {
        guard let high = self.readInteger(as: UInt64.self), let low = self.readInteger(as: UInt64.self) else {
            return nil
        }
        return PeerID(high: high, low: low)
    }
}
