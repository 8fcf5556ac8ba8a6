import NIOCore
import P2P
import Testing

@Suite("TransferMessage")
struct TransferMessageTests {
    static let id = FileID(bytes: (0..<32).map { UInt8($0) })!

    static var samples: [TransferMessage] {
        var bitmap = ChunkBitmap(count: 9)
        bitmap.insert(0)
        bitmap.insert(8)
        let entry = InventoryEntry(
            id: id,
            name: try! FileName("a file.bin"),
            size: 2_000_000,
            chunkSize: 262_144,
            bitmap: ChunkBitmap(count: 8)
        )
        let entry2 = InventoryEntry(
            id: id,
            name: try! FileName("b"),
            size: 9 * 262_144,
            chunkSize: 262_144,
            bitmap: bitmap
        )
        return [
            .inventoryRequest,
            .inventory([]),
            .inventory([entry, entry2]),
            .manifestRequest(id),
            .manifest([1, 2, 3]),
            .chunkRequest(id, chunk: 7),
            .chunkData(id, chunk: 70_000, bytes: ByteBuffer(bytes: [9, 8, 7])),
            .chunkData(id, chunk: 0, bytes: ByteBuffer()),
            .pushedChunk(id, chunk: 3, bytes: ByteBuffer(bytes: [UInt8](repeating: 1, count: 1000))),
            .failure(id, chunk: 4, reason: .chunkNotHeld, message: "chunk not held"),
            .failure(nil, chunk: 0, reason: .unknownFile, message: ""),
            .failure(id, chunk: 0, reason: .noWork, message: "every chunk handed out"),
            .relayRequest(id),
            .relayRequest(id, requester: PeerID(high: 0x0102_0304_0506_0708, low: 0xF0E0_D0C0_B0A0_9080)),
            .workRequest(id, held: []),
            .workRequest(id, held: [0xC0, 0x01]),
            .workRequest(id, held: [0x80], pieceLength: 65_536),
            .assignedChunk(id, chunk: 9, bytes: ByteBuffer(bytes: [UInt8](repeating: 2, count: 300))),
            .unrelayed(id, chunks: [0xA0]),
            .unrelayed(id, chunks: []),
            .assignedPiece(id, chunk: 5, offset: 0, bytes: ByteBuffer(bytes: [UInt8](repeating: 3, count: 100))),
            .relayedPiece(id, chunk: 5, offset: 65_536, bytes: ByteBuffer(bytes: [4, 5])),
            .relayAbort(id, chunk: 5),
            .connectBackRequest(port: 47475),
            .connectBackResult(reached: true, message: "answered"),
            .connectBackResult(reached: false, message: ""),
            .deliveryOffer(
                DeliveryOffer(
                    number: [UInt8](repeating: 7, count: DeliveryOffer.numberLength),
                    sender: PeerID(high: 1, low: 2),
                    target: PeerID(high: 3, low: 4),
                    item: DeliveryItem(id: id, name: try! FileName("image.iso"), size: 5 << 30),
                    waitSeconds: 60
                )
            ),
            .deliveryOffer(
                DeliveryOffer(
                    number: [UInt8](repeating: 8, count: DeliveryOffer.numberLength),
                    sender: PeerID(high: 1, low: 2),
                    target: PeerID(high: 3, low: 4),
                    item: DeliveryItem(kind: .collection, id: id, name: try! FileName("build-42"), size: 3 << 20)
                )
            ),
            .deliveryOffer(
                DeliveryOffer(
                    number: [UInt8](repeating: 9, count: DeliveryOffer.numberLength),
                    sender: PeerID(high: 1, low: 2),
                    target: PeerID(high: 3, low: 4),
                    item: DeliveryItem(
                        kind: .collection,
                        id: id,
                        name: try! FileName("build-43"),
                        size: 3 << 20,
                        pack: FileID(bytes: [UInt8](repeating: 0xAB, count: 32))!
                    )
                )
            ),
            .deliveryAccepted,
            .deliveryRefused(DeliveryRefusal(.diskSpace, "too little free space")),
            .deliveryProgress(bytes: 1 << 40),
            .deliveryReceipt(tag: [UInt8](repeating: 9, count: DeliveryReceipt.tagLength)),
            .collectionListRequest,
            .collectionList([]),
            .collectionList([
                CollectionEntry(id: id, name: try! FileName("photos"), totalSize: 12, memberIDs: [id, id]),
                CollectionEntry(id: id, name: try! FileName("empty"), totalSize: 0, memberIDs: []),
            ]),
            .collectionManifestRequest(id),
            .collectionManifest([1, 2, 3]),
            .fileInventoryRequest(id),
        ]
    }

    @Test("every message survives frame encoding and parsing")
    func roundTrip() throws {
        for message in Self.samples {
            let bytes = message.frame().encoded()
            let frame = try Frame.parse(bytes)
            #expect(try TransferMessage(frame: frame) == message)
        }
    }

    @Test("every message knows its frame type without being encoded")
    func frameTypeWithoutEncoding() {
        for message in Self.samples {
            #expect(message.frameType == message.frame().type)
            #expect(message.kind == "\(message.frame().type)")
        }
    }

    @Test("a chunk that has its file id in front is framed as it is; any other is copied behind the id")
    func chunkFramingWithoutCopy() throws {
        let chunk = [UInt8](repeating: 7, count: 5000)
        // As a parsed frame leaves a chunk: the id, then the chunk, read past the id.
        var parsed = ByteBuffer(bytes: Self.id.bytes + chunk)
        parsed.moveReaderIndex(forwardBy: FileID.byteCount)
        let other = FileID(bytes: [UInt8](repeating: 9, count: 32))!
        var headroomOnly = ByteBuffer(bytes: [UInt8](repeating: 0, count: 32) + chunk)
        headroomOnly.moveReaderIndex(forwardBy: FileID.byteCount)
        let cases: [(bytes: ByteBuffer, id: FileID, shares: Bool)] = [
            (parsed, Self.id, true),
            // Another file's chunk with this id's bytes in front must not take them.
            (parsed, other, false),
            // Room in front that holds no id.
            (headroomOnly, Self.id, false),
            (ByteBuffer(bytes: chunk), Self.id, false),
        ]
        for (bytes, id, shares) in cases {
            for message in [
                TransferMessage.chunkData(id, chunk: 3, bytes: bytes),
                .pushedChunk(id, chunk: 3, bytes: bytes),
                .assignedChunk(id, chunk: 3, bytes: bytes),
            ] {
                let frame = message.frame()
                let framedAt = frame.payload.withUnsafeReadableBytes { $0.baseAddress! + FileID.byteCount }
                let chunkAt = bytes.withUnsafeReadableBytes { $0.baseAddress! }
                #expect((framedAt == chunkAt) == shares, "\(message)")
                // Parsed from the wire, the chunk has its id in front and goes on as it is.
                let parsed = try TransferMessage(frame: Frame.parse(frame.encoded()))
                #expect(parsed == message)
                let reframed = parsed.frame()
                #expect(
                    reframed.payload.withUnsafeReadableBytes { $0.baseAddress! }
                        == parsed.chunkBytes!.withUnsafeReadableBytes { $0.baseAddress! - FileID.byteCount }
                )
            }
        }
    }

    @Test("a piece read from a frame is forwarded as it is; one whose id or offset differs is copied")
    func pieceFramingWithoutCopy() throws {
        let bytes = ByteBuffer(bytes: [UInt8](repeating: 5, count: 4096))
        let received = TransferMessage.assignedPiece(Self.id, chunk: 2, offset: 8192, bytes: bytes)
        let parsed = try TransferMessage(frame: Frame.parse(received.frame().encoded()))
        guard case .assignedPiece(let id, let chunk, let offset, let piece) = parsed else {
            Issue.record("parsed as \(parsed)")
            return
        }
        #expect(id == Self.id && chunk == 2 && offset == 8192 && piece == bytes)
        func address(_ buffer: ByteBuffer) -> UnsafeRawPointer { buffer.withUnsafeReadableBytes { $0.baseAddress! } }
        let prefix = TransferMessage.piecePrefixLength
        let forwarded = TransferMessage.relayedPiece(id, chunk: chunk, offset: offset, bytes: piece).frame()
        #expect(address(forwarded.payload) + prefix == address(piece))
        #expect(
            try TransferMessage(frame: Frame.parse(forwarded.encoded()))
                == .relayedPiece(id, chunk: 2, offset: 8192, bytes: bytes)
        )
        // The same bytes at another offset, or of another file, get a payload of their own.
        let moved = TransferMessage.relayedPiece(id, chunk: chunk, offset: 0, bytes: piece).frame()
        #expect(address(moved.payload) + prefix != address(piece))
        let other = FileID(bytes: [UInt8](repeating: 9, count: 32))!
        let elsewhere = TransferMessage.relayedPiece(other, chunk: chunk, offset: offset, bytes: piece).frame()
        #expect(address(elsewhere.payload) + prefix != address(piece))
        #expect(
            try TransferMessage(frame: Frame.parse(elsewhere.encoded()))
                == .relayedPiece(other, chunk: 2, offset: 8192, bytes: bytes)
        )
    }

    @Test("payloads that do not fit their type are refused")
    func malformed() {
        let cases: [Frame] = [
            Frame(type: .inventoryRequest, payload: ByteBuffer(bytes: [0])),
            Frame(type: .manifestRequest, payload: ByteBuffer(bytes: [1, 2, 3])),
            Frame(type: .chunkRequest, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 33))),
            Frame(type: .chunkData, payload: ByteBuffer(bytes: [1])),
            Frame(type: .failure, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 32) + [99])),
            Frame(type: .hello),
            Frame(type: .relayRequest, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 33))),
            // A requester cut short, and one with a byte too many.
            Frame(type: .relayRequest, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 47))),
            Frame(type: .relayRequest, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 49))),
            Frame(type: .workRequest, payload: ByteBuffer(bytes: [1, 2])),
            Frame(type: .assignedChunk, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 31))),
            Frame(type: .unrelayed, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 20))),
            // A piece without its offset, and one with an offset but no bytes.
            Frame(type: .assignedPiece, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 34))),
            Frame(type: .relayedPiece, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 36))),
            Frame(type: .relayAbort, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 33))),
            // A connect-back to no port, with a payload, or with an outcome other than 0 or 1.
            Frame(type: .connectBackRequest, chunkNumber: 0),
            Frame(type: .connectBackRequest, chunkNumber: 65_536),
            Frame(type: .connectBackRequest, chunkNumber: 80, payload: ByteBuffer(bytes: [0])),
            Frame(type: .connectBackResult, chunkNumber: 2),
            // A truncated offer, an answer other than 0 or 1, a refusal of unknown reason, a
            // short progress count, a receipt tag of the wrong length.
            Frame(type: .deliveryOffer, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 80))),
            Frame(type: .deliveryAnswer, chunkNumber: 2),
            Frame(type: .deliveryAnswer, chunkNumber: 0, payload: ByteBuffer(bytes: [99])),
            Frame(type: .deliveryProgress, payload: ByteBuffer(bytes: [0, 0, 1])),
            Frame(type: .deliveryReceipt, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 31))),
            // An inventory claiming a billion entries in a few bytes.
            Frame(type: .inventory, payload: ByteBuffer(bytes: [0x3B, 0x9A, 0xCA, 0x00, 1, 2, 3])),
            Frame(type: .collectionListRequest, payload: ByteBuffer(bytes: [0])),
            Frame(type: .collectionManifestRequest, payload: ByteBuffer(bytes: [1, 2, 3])),
            Frame(type: .fileInventoryRequest, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 33))),
            // A collection list claiming a billion collections in a few bytes.
            Frame(type: .collectionList, payload: ByteBuffer(bytes: [0x3B, 0x9A, 0xCA, 0x00, 1, 2, 3])),
        ]
        for frame in cases {
            #expect(throws: P2PError.self) { try TransferMessage(frame: frame) }
        }
    }

    @Test("a file offered with a pack is refused: only a folder has one")
    func packOnlyForFolders() throws {
        let offer = DeliveryOffer(
            number: [UInt8](repeating: 7, count: DeliveryOffer.numberLength),
            sender: PeerID(high: 1, low: 2),
            target: PeerID(high: 3, low: 4),
            item: DeliveryItem(
                id: FileID(bytes: [UInt8](repeating: 1, count: 32))!,
                name: try FileName("image.iso"),
                size: 5,
                pack: FileID(bytes: [UInt8](repeating: 2, count: 32))!
            )
        )
        #expect(throws: P2PError.self) { try TransferMessage(frame: TransferMessage.deliveryOffer(offer).frame()) }
    }

    @Test("inventory entries with unsafe names or inconsistent sizes are refused")
    func inventoryLies() throws {
        var valid = TransferMessage.inventory([
            InventoryEntry(id: Self.id, name: try FileName("x"), size: 10, chunkSize: 262_144, bitmap: .full(count: 1))
        ]).frame().payload
        // The name byte is at offset 4 (count) + 32 (id) + 2 (length).
        var slash = valid
        slash.setInteger(UInt8(ascii: "/"), at: slash.readerIndex + 38)
        #expect(throws: P2PError.self) { try TransferMessage(frame: Frame(type: .inventory, payload: slash)) }
        // Claim 3 chunks for a 10-byte file.
        valid.setInteger(UInt32(3), at: valid.readerIndex + 39 + 8 + 4)
        #expect(throws: P2PError.self) { try TransferMessage(frame: Frame(type: .inventory, payload: valid)) }
    }

    @Test("collection list entries with unsafe names, or more member ids than bytes, are refused")
    func collectionListLies() throws {
        let entry = CollectionEntry(id: Self.id, name: try FileName("x"), totalSize: 3, memberIDs: [Self.id])
        let valid = TransferMessage.collectionList([entry]).frame().payload
        #expect(try TransferMessage(frame: Frame(type: .collectionList, payload: valid)) == .collectionList([entry]))
        // The name byte is at offset 4 (count) + 32 (id) + 2 (length).
        var slash = valid
        slash.setInteger(UInt8(ascii: "/"), at: slash.readerIndex + 38)
        #expect(throws: P2PError.self) { try TransferMessage(frame: Frame(type: .collectionList, payload: slash)) }
        // Claim a million members with one id's bytes there.
        var members = valid
        members.setInteger(UInt32(1_000_000), at: members.readerIndex + 39)
        #expect(throws: P2PError.self) { try TransferMessage(frame: Frame(type: .collectionList, payload: members)) }
        // Trailing bytes after the last collection.
        var trailing = valid
        trailing.writeInteger(UInt8(0))
        #expect(throws: P2PError.self) { try TransferMessage(frame: Frame(type: .collectionList, payload: trailing)) }
    }

    @Test("random payloads never trap")
    func randomPayloads() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let type = FrameType.allCases.randomElement(using: &generator)!
            let length = Int.random(in: 0..<120, using: &generator)
            let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? TransferMessage(
                frame: Frame(
                    type: type,
                    chunkNumber: .random(in: 0...UInt32.max, using: &generator),
                    payload: ByteBuffer(bytes: payload)
                )
            )
        }
    }
}

extension TransferMessage {
    /// The chunk a chunk message carries.
    fileprivate var chunkBytes: ByteBuffer? {
        switch self {
        case .chunkData(_, _, let bytes), .pushedChunk(_, _, let bytes), .assignedChunk(_, _, let bytes): bytes
        default: nil
        }
    }
}
