import NIOCore

/// The messages of the transfer protocol, each carried in one `Frame`.
///
/// Payload layouts (integers big-endian; ids are 32 bytes; the chunk number of chunk
/// messages is the frame header's):
///
/// | type | payload |
/// |---|---|
/// | inventory-request | empty |
/// | inventory | count u32, then per file: id, name length u16, name, size u64, chunk size u32, chunk count u32, bitmap |
/// | manifest-request | id |
/// | manifest | the encoded manifest (its SHA-256 is the id) |
/// | chunk-request | id |
/// | chunk-data | id, chunk bytes |
/// | pushed-chunk | id, chunk bytes |
/// | failure | id (zeros if none), reason u8, message (UTF-8) |
/// | relay-request | id |
/// | work-request | id, then the sender's chunk bitmap (empty: none held); the header's chunk number is the piece length asked for (0: whole chunks) |
/// | assigned-chunk | id, chunk bytes |
/// | unrelayed | id, chunk bitmap |
/// | assigned-piece | id, offset u32, bytes |
/// | relayed-piece | id, offset u32, bytes |
/// | relay-abort | id |
/// | connect-back-request | (port in the frame header) |
/// | connect-back-result | message, UTF-8 (1 or 0 in the frame header) |
/// | delivery-offer | offer number (16 bytes), sender id (16), target id (16), kind u8 (1: file), item id, size u64, name length u16, name (seconds the sender waits in the header, 0: no limit) |
/// | delivery-answer | accepted: empty (1 in the header); refused: reason u8, message UTF-8 (0 in the header) |
/// | delivery-progress | bytes held u64 |
/// | delivery-receipt | HMAC-SHA-256 tag (32 bytes; see `DeliveryReceipt`) |
/// | collection-list-request | empty |
/// | collection-list | count u32, then per collection: id, name length u16, name, file count u32, total size u64, file count × member file id |
/// | collection-manifest-request | id |
/// | collection-manifest | the encoded collection manifest (its SHA-256 is the id) |
/// | file-inventory-request | id |
public enum TransferMessage: Sendable, Equatable {
    /// Asks for the receiver's inventory.
    case inventoryRequest
    /// The sender's files and chunks.
    case inventory([InventoryEntry])
    /// Asks for a manifest.
    case manifestRequest(FileID)
    /// An encoded manifest, answering a request or preceding pushed chunks.
    case manifest([UInt8])
    /// Asks for a chunk.
    case chunkRequest(FileID, chunk: Int)
    /// A chunk's bytes.
    case chunkData(FileID, chunk: Int, bytes: ByteBuffer)
    /// A chunk sent unasked by distribution.
    case pushedChunk(FileID, chunk: Int, bytes: ByteBuffer)
    /// A request that cannot be answered.
    case failure(FileID?, chunk: Int, reason: FailureReason, message: String)
    /// Asks the receiver to forward the chunks of the file it is assigned by a seeder;
    /// `requester` is the asking downloader's peer id, which places it in the relay
    /// overlay (absent: a peer that relays in a full mesh only).
    case relayRequest(FileID, requester: PeerID? = nil)
    /// Asks a seeder for the next chunk it has handed nobody; `held` is the sender's chunk
    /// bitmap bytes (empty when it holds nothing), so that it is not handed what it has.
    ///
    /// A sender that forwards what it is handed asks for it in pieces of `pieceLength`
    /// bytes (zero: whole chunks), so that it can forward each piece as it arrives.
    case workRequest(FileID, held: [UInt8], pieceLength: Int = 0)
    /// A chunk handed out by a seeder in answer to a work request: the receiver is the
    /// one that spreads it to the others.
    case assignedChunk(FileID, chunk: Int, bytes: ByteBuffer)
    /// The relayer's answer-free notice on taking a relay request: `chunks` (bitmap bytes)
    /// are the ones it was handed before it, which it will not forward. The receiver
    /// fetches them at once instead of waiting to see whether they come forwarded.
    case unrelayed(FileID, chunks: [UInt8])
    /// The bytes of a chunk handed out by a seeder from `offset` on, answering a work
    /// request that asked for pieces; the piece that ends the chunk ends the answer.
    case assignedPiece(FileID, chunk: Int, offset: Int, bytes: ByteBuffer)
    /// The bytes of a chunk forwarded by a relayer from `offset` on. The piece that
    /// completes the chunk is sent only after the relayer has verified it.
    case relayedPiece(FileID, chunk: Int, offset: Int, bytes: ByteBuffer)
    /// The relayer will not complete this chunk: drop the pieces of it that came.
    case relayAbort(FileID, chunk: Int)
    /// Asks the receiver to connect back to the sender's address at `port` (1...65535).
    case connectBackRequest(port: Int)
    /// Whether the receiver's connection back was made and answered, and what happened.
    case connectBackResult(reached: Bool, message: String)
    /// Offers a delivery to the receiver (`p2p send`).
    case deliveryOffer(DeliveryOffer)
    /// The receiver takes the offered delivery and starts fetching it.
    case deliveryAccepted
    /// The receiver refuses the offered delivery, or could not finish it, and says why.
    case deliveryRefused(DeliveryRefusal)
    /// Bytes of the offered item the receiver holds.
    case deliveryProgress(bytes: UInt64)
    /// The receiver holds the offered item, verified: its receipt's tag.
    case deliveryReceipt(tag: [UInt8])
    /// Asks for the collections (shared folders) the receiver offers.
    case collectionListRequest
    /// The sender's collections.
    case collectionList([CollectionEntry])
    /// Asks for a collection manifest.
    case collectionManifestRequest(FileID)
    /// An encoded collection manifest, answering a request.
    case collectionManifest([UInt8])
    /// Asks which chunks of one file the receiver holds (answered with an inventory of at
    /// most that file).
    case fileInventoryRequest(FileID)

    /// The frame type the message travels as, known without encoding it.
    public var frameType: FrameType {
        switch self {
        case .inventoryRequest: .inventoryRequest
        case .inventory: .inventory
        case .manifestRequest: .manifestRequest
        case .manifest: .manifest
        case .chunkRequest: .chunkRequest
        case .chunkData: .chunkData
        case .pushedChunk: .pushedChunk
        case .failure: .failure
        case .relayRequest: .relayRequest
        case .workRequest: .workRequest
        case .assignedChunk: .assignedChunk
        case .unrelayed: .unrelayed
        case .assignedPiece: .assignedPiece
        case .relayedPiece: .relayedPiece
        case .relayAbort: .relayAbort
        case .connectBackRequest: .connectBackRequest
        case .connectBackResult: .connectBackResult
        case .deliveryOffer: .deliveryOffer
        case .deliveryAccepted, .deliveryRefused: .deliveryAnswer
        case .deliveryProgress: .deliveryProgress
        case .deliveryReceipt: .deliveryReceipt
        case .collectionListRequest: .collectionListRequest
        case .collectionList: .collectionList
        case .collectionManifestRequest: .collectionManifestRequest
        case .collectionManifest: .collectionManifest
        case .fileInventoryRequest: .fileInventoryRequest
        }
    }

    /// The message's type, for error messages.
    public var kind: String { "\(self.frameType)" }

    /// Why a request failed.
    public enum FailureReason: UInt8, Sendable, Equatable {
        /// The file is not held here.
        case unknownFile = 1
        /// The chunk is not held here.
        case chunkNotHeld = 2
        /// Reading the disk failed.
        case storage = 3
        /// Too many requests at once.
        case busy = 4
        /// A work request when every chunk has been handed out: fetch the rest from peers.
        case noWork = 5
    }

    /// The all-zero id used where a failure concerns no file.
    static let noFile = FileID(bytes: [UInt8](repeating: 0, count: 32))!

    /// The message as a frame.
    public func frame(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> Frame {
        switch self {
        case .inventoryRequest:
            return Frame(type: .inventoryRequest)
        case .inventory(let entries):
            var payload = allocator.buffer(capacity: 4 + entries.count * 64)
            payload.writeInteger(UInt32(entries.count))
            for entry in entries {
                payload.writeBytes(entry.id.bytes)
                let name = Array(entry.name.value.utf8)
                payload.writeInteger(UInt16(name.count))
                payload.writeBytes(name)
                payload.writeInteger(entry.size)
                payload.writeInteger(UInt32(entry.chunkSize))
                payload.writeInteger(UInt32(entry.bitmap.count))
                payload.writeBytes(entry.bitmap.bytes)
            }
            return Frame(type: .inventory, payload: payload)
        case .manifestRequest(let id):
            return Frame(type: .manifestRequest, payload: ByteBuffer(bytes: id.bytes))
        case .manifest(let bytes):
            return Frame(type: .manifest, payload: ByteBuffer(bytes: bytes))
        case .chunkRequest(let id, let chunk):
            return Frame(type: .chunkRequest, chunkNumber: UInt32(chunk), payload: ByteBuffer(bytes: id.bytes))
        case .chunkData(let id, let chunk, let bytes):
            return Frame(type: .chunkData, chunkNumber: UInt32(chunk), payload: Self.prefixed(id, bytes, allocator))
        case .pushedChunk(let id, let chunk, let bytes):
            return Frame(type: .pushedChunk, chunkNumber: UInt32(chunk), payload: Self.prefixed(id, bytes, allocator))
        case .relayRequest(let id, let requester):
            var payload = allocator.buffer(capacity: FileID.byteCount + 16)
            payload.writeBytes(id.bytes)
            if let requester {
                payload.writeInteger(requester.high)
                payload.writeInteger(requester.low)
            }
            return Frame(type: .relayRequest, payload: payload)
        case .workRequest(let id, let held, let pieceLength):
            return Frame(
                type: .workRequest,
                chunkNumber: UInt32(clamping: pieceLength),
                payload: Self.idThen(id, held, allocator)
            )
        case .assignedChunk(let id, let chunk, let bytes):
            return Frame(type: .assignedChunk, chunkNumber: UInt32(chunk), payload: Self.prefixed(id, bytes, allocator))
        case .unrelayed(let id, let chunks):
            return Frame(type: .unrelayed, payload: Self.idThen(id, chunks, allocator))
        case .assignedPiece(let id, let chunk, let offset, let bytes):
            return Frame(
                type: .assignedPiece,
                chunkNumber: UInt32(chunk),
                payload: Self.piece(id, offset: offset, bytes)
            )
        case .relayedPiece(let id, let chunk, let offset, let bytes):
            return Frame(
                type: .relayedPiece,
                chunkNumber: UInt32(chunk),
                payload: Self.piece(id, offset: offset, bytes)
            )
        case .relayAbort(let id, let chunk):
            return Frame(type: .relayAbort, chunkNumber: UInt32(chunk), payload: ByteBuffer(bytes: id.bytes))
        case .connectBackRequest(let port):
            return Frame(type: .connectBackRequest, chunkNumber: UInt32(clamping: port))
        case .connectBackResult(let reached, let message):
            return Frame(
                type: .connectBackResult,
                chunkNumber: reached ? 1 : 0,
                payload: ByteBuffer(string: String(message.prefix(512)))
            )
        case .deliveryOffer(let offer):
            return Frame(
                type: .deliveryOffer,
                chunkNumber: UInt32(clamping: offer.waitSeconds),
                payload: offer.payload(allocator: allocator)
            )
        case .deliveryAccepted:
            return Frame(type: .deliveryAnswer, chunkNumber: 1)
        case .deliveryRefused(let refusal):
            var payload = allocator.buffer(capacity: 1 + refusal.message.utf8.count)
            payload.writeInteger(refusal.reason.rawValue)
            payload.writeString(String(refusal.message.prefix(512)))
            return Frame(type: .deliveryAnswer, chunkNumber: 0, payload: payload)
        case .deliveryProgress(let bytes):
            var payload = allocator.buffer(capacity: 8)
            payload.writeInteger(bytes)
            return Frame(type: .deliveryProgress, payload: payload)
        case .deliveryReceipt(let tag):
            return Frame(type: .deliveryReceipt, payload: ByteBuffer(bytes: tag))
        case .collectionListRequest:
            return Frame(type: .collectionListRequest)
        case .collectionList(let entries):
            var payload = allocator.buffer(capacity: 4 + entries.reduce(0) { $0 + 80 + 32 * $1.memberIDs.count })
            payload.writeInteger(UInt32(entries.count))
            for entry in entries {
                payload.writeBytes(entry.id.bytes)
                let name = Array(entry.name.value.utf8)
                payload.writeInteger(UInt16(name.count))
                payload.writeBytes(name)
                payload.writeInteger(UInt32(entry.memberIDs.count))
                payload.writeInteger(entry.totalSize)
                for member in entry.memberIDs { payload.writeBytes(member.bytes) }
            }
            return Frame(type: .collectionList, payload: payload)
        case .collectionManifestRequest(let id):
            return Frame(type: .collectionManifestRequest, payload: ByteBuffer(bytes: id.bytes))
        case .collectionManifest(let bytes):
            return Frame(type: .collectionManifest, payload: ByteBuffer(bytes: bytes))
        case .fileInventoryRequest(let id):
            return Frame(type: .fileInventoryRequest, payload: ByteBuffer(bytes: id.bytes))
        case .failure(let id, let chunk, let reason, let message):
            var payload = allocator.buffer(capacity: 33 + message.utf8.count)
            payload.writeBytes((id ?? Self.noFile).bytes)
            payload.writeInteger(reason.rawValue)
            payload.writeString(String(message.prefix(512)))
            return Frame(type: .failure, chunkNumber: UInt32(chunk), payload: payload)
        }
    }

    /// The payload of a message that carries a file id and then bytes of its own (a chunk
    /// bitmap).
    static func idThen(_ id: FileID, _ bytes: [UInt8], _ allocator: ByteBufferAllocator) -> ByteBuffer {
        var payload = allocator.buffer(capacity: FileID.byteCount + bytes.count)
        payload.writeBytes(id.bytes)
        payload.writeBytes(bytes)
        return payload
    }

    /// The payload of a chunk message: the file id, then the chunk.
    ///
    /// A chunk that already has its file id just before its readable bytes (one read from
    /// a frame, whose id the parser stepped over; one read from disk by `readChunk`, which
    /// leaves room for it) is framed as it is, without a copy: a downloader forwards every
    /// chunk it is handed to each of the others, and a copy per subscriber was a quarter of
    /// a megabyte of fresh memory per chunk and per peer.
    static func prefixed(_ id: FileID, _ bytes: ByteBuffer, _ allocator: ByteBufferAllocator) -> ByteBuffer {
        if let framed = Self.inPlace(id.bytes, before: bytes) { return framed }
        var payload = allocator.buffer(capacity: FileID.byteCount + bytes.readableBytes)
        payload.writeBytes(id.bytes)
        payload.writeImmutableBuffer(bytes)
        return payload
    }

    /// Bytes in front of a piece's bytes: the file id and the offset.
    public static let piecePrefixLength = FileID.byteCount + 4

    /// The payload of a piece: the file id, the offset, then the bytes.
    ///
    /// A piece read from a frame keeps its id and offset just before its readable bytes; a
    /// relayer forwards it as it is, without a copy (it sends each piece to every other
    /// downloader).
    static func piece(_ id: FileID, offset: Int, _ bytes: ByteBuffer) -> ByteBuffer {
        var prefix = id.bytes
        withUnsafeBytes(of: UInt32(offset).bigEndian) { prefix.append(contentsOf: $0) }
        if let framed = Self.inPlace(prefix, before: bytes) { return framed }
        // Of exactly its size: the allocator would round 64 KiB and the prefix up to 128 KiB.
        var payload = ChunkBufferAllocator.buffer(exactCapacity: prefix.count + bytes.readableBytes)
        payload.writeBytes(prefix)
        payload.writeImmutableBuffer(bytes)
        return payload
    }

    /// `bytes` with `prefix` in front, without a copy, if `prefix` is already just before
    /// its readable bytes (as a parser that stepped over it, or `readChunk`, leaves it).
    /// - Returns: the payload, or `nil` if the bytes in front are not `prefix`.
    private static func inPlace(_ prefix: [UInt8], before bytes: ByteBuffer) -> ByteBuffer? {
        guard bytes.readerIndex >= prefix.count else { return nil }
        var framed = bytes
        framed.moveReaderIndex(to: bytes.readerIndex - prefix.count)
        return framed.readableBytesView.prefix(prefix.count).elementsEqual(prefix) ? framed : nil
    }

    /// Reads a message from a frame.
    /// - Parameter frame: a frame whose checksum has verified.
    /// - Returns: the message.
    /// - Throws: `P2PError` (`protocolViolation`) if the payload does not fit its type.
    public init(frame: Frame) throws(P2PError) {
        var payload = frame.payload
        let chunk = Int(frame.chunkNumber)
        func bad(_ what: String) -> P2PError {
            P2PError(code: .protocolViolation, "malformed \(frame.type) message: \(what)")
        }
        func readID() throws(P2PError) -> FileID {
            guard let bytes = payload.readBytes(length: FileID.byteCount) else { throw bad("truncated file id") }
            return FileID(bytes: bytes)!
        }
        func requireEnd() throws(P2PError) {
            guard payload.readableBytes == 0 else { throw bad("\(payload.readableBytes) trailing bytes") }
        }
        switch frame.type {
        case .hello:
            throw bad("hello is reserved for authenticated sessions")
        case .inventoryRequest:
            try requireEnd()
            self = .inventoryRequest
        case .inventory:
            guard let count = payload.readInteger(as: UInt32.self) else { throw bad("truncated count") }
            // Every entry takes at least 50 bytes, so a count the payload cannot hold is a lie
            // and is refused before anything is allocated for it.
            guard Int(count) <= payload.readableBytes / 50 else { throw bad("\(count) entries cannot fit") }
            var entries: [InventoryEntry] = []
            entries.reserveCapacity(Int(count))
            for _ in 0..<count {
                let id = try readID()
                guard let nameLength = payload.readInteger(as: UInt16.self),
                    let nameBytes = payload.readBytes(length: Int(nameLength)),
                    let size = payload.readInteger(as: UInt64.self),
                    let chunkSize = payload.readInteger(as: UInt32.self),
                    let chunkCount = payload.readInteger(as: UInt32.self)
                else { throw bad("truncated entry") }
                let name: FileName
                do { name = try FileName(utf8: nameBytes) } catch { throw bad(error.message) }
                guard chunkSize > 0, Int(chunkSize) <= ChunkSizing.maximumChunkSize,
                    Int(chunkCount) == ChunkSizing.chunkCount(fileSize: size, chunkSize: Int(chunkSize))
                else { throw bad("chunk count \(chunkCount) does not fit size \(size)") }
                guard let bitmapBytes = payload.readBytes(length: (Int(chunkCount) + 7) / 8),
                    let bitmap = ChunkBitmap(bytes: bitmapBytes, count: Int(chunkCount))
                else { throw bad("bad bitmap") }
                entries.append(
                    InventoryEntry(id: id, name: name, size: size, chunkSize: Int(chunkSize), bitmap: bitmap)
                )
            }
            try requireEnd()
            self = .inventory(entries)
        case .manifestRequest:
            let id = try readID()
            try requireEnd()
            self = .manifestRequest(id)
        case .manifest:
            self = .manifest(Array(payload.readableBytesView))
        case .chunkRequest:
            let id = try readID()
            try requireEnd()
            self = .chunkRequest(id, chunk: chunk)
        case .chunkData:
            let id = try readID()
            self = .chunkData(id, chunk: chunk, bytes: payload)
        case .pushedChunk:
            let id = try readID()
            self = .pushedChunk(id, chunk: chunk, bytes: payload)
        case .failure:
            let id = try readID()
            guard let reasonValue = payload.readInteger(as: UInt8.self),
                let reason = FailureReason(rawValue: reasonValue)
            else { throw bad("unknown reason") }
            let message = payload.readString(length: payload.readableBytes) ?? ""
            self = .failure(id == Self.noFile ? nil : id, chunk: chunk, reason: reason, message: message)
        case .relayRequest:
            let id = try readID()
            var requester: PeerID? = nil
            if payload.readableBytes > 0 {
                guard let high = payload.readInteger(as: UInt64.self), let low = payload.readInteger(as: UInt64.self)
                else { throw bad("truncated requester") }
                requester = PeerID(high: high, low: low)
            }
            try requireEnd()
            self = .relayRequest(id, requester: requester)
        case .workRequest:
            let id = try readID()
            self = .workRequest(id, held: Array(payload.readableBytesView), pieceLength: chunk)
        case .assignedChunk:
            let id = try readID()
            self = .assignedChunk(id, chunk: chunk, bytes: payload)
        case .unrelayed:
            let id = try readID()
            self = .unrelayed(id, chunks: Array(payload.readableBytesView))
        case .assignedPiece, .relayedPiece:
            let id = try readID()
            guard let offset = payload.readInteger(as: UInt32.self) else { throw bad("truncated offset") }
            guard payload.readableBytes > 0 else { throw bad("an empty piece") }
            self =
                frame.type == .assignedPiece
                ? .assignedPiece(id, chunk: chunk, offset: Int(offset), bytes: payload)
                : .relayedPiece(id, chunk: chunk, offset: Int(offset), bytes: payload)
        case .relayAbort:
            let id = try readID()
            try requireEnd()
            self = .relayAbort(id, chunk: chunk)
        case .connectBackRequest:
            try requireEnd()
            guard (1...65535).contains(chunk) else { throw bad("port \(chunk)") }
            self = .connectBackRequest(port: chunk)
        case .connectBackResult:
            guard chunk <= 1 else { throw bad("outcome \(chunk)") }
            self = .connectBackResult(
                reached: chunk == 1,
                message: payload.readString(length: payload.readableBytes) ?? ""
            )
        case .deliveryOffer:
            self = .deliveryOffer(try DeliveryOffer.parse(&payload, waitSeconds: chunk, bad: bad))
        case .deliveryAnswer:
            switch chunk {
            case 1:
                try requireEnd()
                self = .deliveryAccepted
            case 0:
                guard let value = payload.readInteger(as: UInt8.self),
                    let reason = DeliveryRefusal.Reason(rawValue: value)
                else { throw bad("unknown reason") }
                self = .deliveryRefused(
                    DeliveryRefusal(reason, payload.readString(length: payload.readableBytes) ?? "")
                )
            default:
                throw bad("answer \(chunk)")
            }
        case .deliveryProgress:
            guard let bytes = payload.readInteger(as: UInt64.self) else { throw bad("truncated byte count") }
            try requireEnd()
            self = .deliveryProgress(bytes: bytes)
        case .deliveryReceipt:
            guard payload.readableBytes == DeliveryReceipt.tagLength else {
                throw bad("a tag of \(payload.readableBytes) bytes")
            }
            self = .deliveryReceipt(tag: Array(payload.readableBytesView))
        case .collectionListRequest:
            try requireEnd()
            self = .collectionListRequest
        case .collectionList:
            guard let count = payload.readInteger(as: UInt32.self) else { throw bad("truncated count") }
            // Every entry takes at least 47 bytes (id, a one-byte name, counts): a count the
            // payload cannot hold is refused before anything is allocated for it.
            guard Int(count) <= payload.readableBytes / 47 else { throw bad("\(count) collections cannot fit") }
            var entries: [CollectionEntry] = []
            entries.reserveCapacity(Int(count))
            for _ in 0..<count {
                let id = try readID()
                guard let nameLength = payload.readInteger(as: UInt16.self),
                    let nameBytes = payload.readBytes(length: Int(nameLength)),
                    let fileCount = payload.readInteger(as: UInt32.self),
                    let totalSize = payload.readInteger(as: UInt64.self)
                else { throw bad("truncated collection") }
                let name: FileName
                do { name = try FileName(utf8: nameBytes) } catch { throw bad(error.message) }
                guard Int(fileCount) <= CollectionManifest.maximumEntryCount,
                    Int(fileCount) * FileID.byteCount <= payload.readableBytes
                else { throw bad("\(fileCount) member ids cannot fit") }
                var members: [FileID] = []
                members.reserveCapacity(Int(fileCount))
                for _ in 0..<fileCount { members.append(try readID()) }
                entries.append(
                    CollectionEntry(
                        id: id,
                        name: name,
                        totalSize: totalSize,
                        memberIDs: members
                    )
                )
            }
            try requireEnd()
            self = .collectionList(entries)
        case .collectionManifestRequest:
            let id = try readID()
            try requireEnd()
            self = .collectionManifestRequest(id)
        case .collectionManifest:
            self = .collectionManifest(Array(payload.readableBytesView))
        case .fileInventoryRequest:
            let id = try readID()
            try requireEnd()
            self = .fileInventoryRequest(id)
        }
    }
}
