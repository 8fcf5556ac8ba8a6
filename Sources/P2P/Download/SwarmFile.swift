/// A file in the swarm, as the peers' inventories describe it.
public struct SwarmFile: Sendable {
    /// The file id.
    public var id: FileID
    /// The name.
    public var name: FileName
    /// The size.
    public var size: UInt64
    /// The number of chunks.
    public var chunkCount: Int
    /// Which peers hold how many chunks.
    public var holders: [PeerID: ChunkBitmap]
    /// Chunks held by at least one peer.
    public var availableChunks: Int

    /// Creates a file's entry.
    public init(
        id: FileID,
        name: FileName,
        size: UInt64,
        chunkCount: Int,
        holders: [PeerID: ChunkBitmap],
        availableChunks: Int
    ) {
        self.id = id
        self.name = name
        self.size = size
        self.chunkCount = chunkCount
        self.holders = holders
        self.availableChunks = availableChunks
    }
}
