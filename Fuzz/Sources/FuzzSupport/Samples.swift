// Valid values of every kind, for the seed corpora.
import NIOCore
import P2P

/// Sample values built through the library's own encoders.
public enum Samples {
    /// Chunk hashes that are just distinct patterns (a manifest does not check them).
    public static func hashes(count: Int) -> [UInt8] {
        (0..<count * 32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    }

    /// A manifest for a file of `size` bytes.
    public static func manifest(name: String, size: UInt64, chunkSize: Int = ChunkSizing.baseChunkSize) -> Manifest {
        let count = ChunkSizing.chunkCount(fileSize: size, chunkSize: chunkSize)
        return try! Manifest(
            name: try! FileName(name),
            size: size,
            chunkSize: chunkSize,
            chunkHashes: hashes(count: count)
        )
    }

    /// A handful of manifests: empty file, one short chunk, several chunks, odd names.
    public static let manifests: [Manifest] = [
        manifest(name: "empty", size: 0),
        manifest(name: "a.txt", size: 1),
        manifest(name: "three-chunks.bin", size: 3 * 256 * 1024 - 5),
        manifest(name: "small chunks", size: 1000, chunkSize: 64),
        manifest(name: "ünïcødé 名前.dat", size: 70_000, chunkSize: 8192),
    ]

    /// One inventory entry per sample manifest, with a pattern of held chunks.
    public static var inventoryEntries: [InventoryEntry] {
        manifests.enumerated().map { index, manifest in
            var bitmap = ChunkBitmap(count: manifest.chunkCount)
            for chunk in 0..<manifest.chunkCount where (chunk + index) % 3 != 1 { bitmap.insert(chunk) }
            return InventoryEntry(
                id: manifest.id,
                name: manifest.name,
                size: manifest.size,
                chunkSize: manifest.chunkSize,
                bitmap: bitmap
            )
        }
    }

    /// A few collection manifests: empty, one file, nested paths with an empty folder and
    /// a file under two paths.
    public static let collections: [CollectionManifest] = [
        collection(name: "empty", files: [], folders: []),
        collection(name: "one", files: [("a.txt", 0)], folders: []),
        collection(
            name: "tree",
            files: [("a.txt", 0), ("docs/b.txt", 1), ("docs/deep/c.bin", 2), ("copy/a.txt", 0)],
            folders: ["empty", "docs/nothing"]
        ),
    ]

    /// A collection manifest whose files are sample manifests (by index).
    public static func collection(
        name: String,
        files: [(path: String, manifest: Int)],
        folders: [String]
    ) -> CollectionManifest {
        try! CollectionManifest(
            name: try! FileName(name),
            files: files.map { file in
                CollectionManifest.Member(
                    path: try! CollectionPath(file.path),
                    fileID: manifests[file.manifest].id,
                    size: manifests[file.manifest].size
                )
            },
            emptyFolders: folders.map { try! CollectionPath($0) }
        )
    }

    /// Every message kind, some more than once.
    public static var messages: [(name: String, message: TransferMessage)] {
        let id = manifests[2].id
        return [
            ("inventory-request", .inventoryRequest),
            ("inventory-empty", .inventory([])),
            ("inventory-one", .inventory([inventoryEntries[1]])),
            ("inventory-all", .inventory(inventoryEntries)),
            ("manifest-request", .manifestRequest(id)),
            ("manifest", .manifest(manifests[2].encoded)),
            ("manifest-small", .manifest(manifests[3].encoded)),
            ("chunk-request", .chunkRequest(id, chunk: 2)),
            ("chunk-data", .chunkData(id, chunk: 1, bytes: ByteBuffer(bytes: Array("chunk one bytes".utf8)))),
            ("chunk-data-empty", .chunkData(id, chunk: 0, bytes: ByteBuffer())),
            (
                "pushed-chunk",
                .pushedChunk(id, chunk: 7, bytes: ByteBuffer(bytes: [UInt8](repeating: 0xAB, count: 100)))
            ),
            ("failure-unknown-file", .failure(id, chunk: 0, reason: .unknownFile, message: "no such file")),
            ("failure-no-file", .failure(nil, chunk: 3, reason: .busy, message: "too many requests")),
            ("failure-chunk", .failure(id, chunk: 5, reason: .chunkNotHeld, message: "")),
            ("failure-storage", .failure(id, chunk: 1, reason: .storage, message: "disk said no: é")),
            ("failure-no-work", .failure(id, chunk: 0, reason: .noWork, message: "every chunk handed out")),
            ("relay-request", .relayRequest(id)),
            ("work-request-none-held", .workRequest(id, held: [])),
            ("work-request-held", .workRequest(id, held: [0xA0])),
            (
                "assigned-chunk",
                .assignedChunk(id, chunk: 4, bytes: ByteBuffer(bytes: [UInt8](repeating: 0x5A, count: 64)))
            ),
            ("unrelayed", .unrelayed(id, chunks: [0x90, 0x01])),
            ("work-request-pieces", .workRequest(id, held: [0x80], pieceLength: 65_536)),
            (
                "assigned-piece",
                .assignedPiece(id, chunk: 2, offset: 0, bytes: ByteBuffer(bytes: [UInt8](repeating: 0x3C, count: 64)))
            ),
            (
                "relayed-piece",
                .relayedPiece(
                    id,
                    chunk: 2,
                    offset: 65_536,
                    bytes: ByteBuffer(bytes: [UInt8](repeating: 0xC3, count: 32))
                )
            ),
            ("relay-abort", .relayAbort(id, chunk: 2)),
            ("connect-back-request", .connectBackRequest(port: 47475)),
            ("connect-back-result", .connectBackResult(reached: false, message: "connection refused")),
            (
                "delivery-offer",
                .deliveryOffer(
                    DeliveryOffer(
                        number: [UInt8](repeating: 0x5A, count: DeliveryOffer.numberLength),
                        sender: PeerID(high: 1, low: 2),
                        target: PeerID(high: 3, low: 4),
                        item: DeliveryItem(id: id, name: try! FileName("image.iso"), size: 1 << 20),
                        waitSeconds: 60
                    )
                )
            ),
            ("delivery-accepted", .deliveryAccepted),
            ("delivery-refused", .deliveryRefused(DeliveryRefusal(.quota, "over its quota"))),
            ("delivery-progress", .deliveryProgress(bytes: 65_536)),
            ("delivery-receipt", .deliveryReceipt(tag: [UInt8](repeating: 0xA5, count: DeliveryReceipt.tagLength))),
            ("collection-list-request", .collectionListRequest),
            ("collection-list-empty", .collectionList([])),
            ("collection-list", .collectionList(collections.map(CollectionEntry.init))),
            ("collection-manifest-request", .collectionManifestRequest(collections[2].id)),
            ("collection-manifest", .collectionManifest(collections[2].encoded)),
            ("file-inventory-request", .fileInventoryRequest(id)),
        ]
    }
}
