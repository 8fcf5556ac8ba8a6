/// What a frame carries. The values are on the wire: never renumber one.
public enum FrameType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Opens a connection: the sender's peer id and protocol features.
    case hello = 1
    /// Asks for the receiver's inventory.
    case inventoryRequest = 2
    /// Which files the sender has, and which of their chunks.
    case inventory = 3
    /// Asks for the manifest of a file id.
    case manifestRequest = 4
    /// A manifest, answering a request or announcing a push.
    case manifest = 5
    /// Asks for one chunk; the chunk number is in the frame header.
    case chunkRequest = 6
    /// One chunk's bytes; the chunk number is in the frame header.
    case chunkData = 7
    /// A chunk sent unasked by distribution; the chunk number is in the frame header.
    case pushedChunk = 8
    /// The request cannot be answered (unknown file, chunk not held, ...).
    case failure = 9
    /// Asks the receiver to forward the chunks of a file it is handed by a seeder
    /// (`assignedChunk`, `assignedPiece`) to the sender, on this connection: as
    /// `relayedPiece` frames (a chunk's last piece once it has verified) or as `pushedChunk`
    /// frames for chunks handed out whole.
    case relayRequest = 10
    /// Asks a seeder for a chunk of its choosing that it has not yet handed anyone.
    case workRequest = 11
    /// A chunk handed out by a seeder, answering a work request; the receiver forwards it
    /// to the peers that asked it to relay.
    case assignedChunk = 12
    /// Sent by a relayer as it takes a relay request: the chunks of the file it was handed
    /// before, which it will not forward to the sender.
    case unrelayed = 13
    /// Part of a chunk handed out by a seeder, answering a work request that asked for
    /// pieces: the receiver forwards each piece as it comes, before the chunk is whole.
    case assignedPiece = 14
    /// Part of a chunk forwarded by a relayer; the piece that completes the chunk comes only
    /// once the relayer has verified it.
    case relayedPiece = 15
    /// A relayer will not complete a chunk whose first pieces it forwarded (it did not
    /// verify, or its source went away): the receiver drops those pieces.
    case relayAbort = 16
    /// Asks the receiver to open a transfer connection back to the sender's own address, at
    /// the port in the frame header, and to say whether it was answered: whether peers can
    /// reach this host (`p2p doctor`).
    case connectBackRequest = 17
    /// The answer to a connect-back request: 1 in the frame header if the connection was
    /// made and answered, 0 if not, and what happened, in the payload.
    case connectBackResult = 18
    /// Offers a delivery (`p2p send`): the offer number, the sender and target ids, and the
    /// item's kind, id, size and name; the seconds the sender waits in the frame header.
    case deliveryOffer = 19
    /// The target's answer to an offer, or its word that it could not finish: 1 in the
    /// frame header for accepted, 0 for refused, with the reason and what happened.
    case deliveryAnswer = 20
    /// How many bytes of the offered item the target holds, while it fetches.
    case deliveryProgress = 21
    /// The target holds the offered item, verified whole: the receipt's tag.
    case deliveryReceipt = 22
    // 23 is kept for delivery (`send`).
    /// Asks for the collections (shared folders) the receiver offers.
    case collectionListRequest = 24
    /// The collections the sender offers: id, name, file count, total size, member ids.
    case collectionList = 25
    /// Asks for the collection manifest of a collection id.
    case collectionManifestRequest = 26
    /// A collection manifest, answering a request.
    case collectionManifest = 27
    /// Asks which chunks of one file the receiver holds: answered with an inventory of
    /// that file alone (or of nothing), so that a download does not pay for a listing of
    /// every file the peer offers (a shared folder of thousands) each time it looks.
    case fileInventoryRequest = 28

    public var description: String {
        switch self {
        case .hello: "hello"
        case .inventoryRequest: "inventory-request"
        case .inventory: "inventory"
        case .manifestRequest: "manifest-request"
        case .manifest: "manifest"
        case .chunkRequest: "chunk-request"
        case .chunkData: "chunk-data"
        case .pushedChunk: "pushed-chunk"
        case .failure: "failure"
        case .relayRequest: "relay-request"
        case .workRequest: "work-request"
        case .assignedChunk: "assigned-chunk"
        case .unrelayed: "unrelayed"
        case .assignedPiece: "assigned-piece"
        case .relayedPiece: "relayed-piece"
        case .relayAbort: "relay-abort"
        case .connectBackRequest: "connect-back-request"
        case .connectBackResult: "connect-back-result"
        case .deliveryOffer: "delivery-offer"
        case .deliveryAnswer: "delivery-answer"
        case .deliveryProgress: "delivery-progress"
        case .deliveryReceipt: "delivery-receipt"
        case .collectionListRequest: "collection-list-request"
        case .collectionList: "collection-list"
        case .collectionManifestRequest: "collection-manifest-request"
        case .collectionManifest: "collection-manifest"
        case .fileInventoryRequest: "file-inventory-request"
        }
    }
}
