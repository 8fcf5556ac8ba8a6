/// How files are cut into chunks.
///
/// 256 KiB chunks for files up to 16 GiB, doubling beyond so that no file has more than
/// 65,536 chunks (a 100 GiB file gets 2 MiB chunks). Why: a 1-byte file is one short
/// chunk; 256 KiB is large enough that the per-chunk cost (a 12-byte frame header, a
/// 32-byte id and one request) is below 0.02 % and a window of requests keeps a LAN busy,
/// and small enough that a swarm passes chunks on quickly and a lost peer costs little.
/// The cap on the count bounds the manifest (2 MiB of hashes) and the per-file bitmap
/// (8 KiB) whatever the file size.
public enum ChunkSizing {
    /// The chunk size of files up to 16 GiB.
    public static let baseChunkSize = 256 * 1024
    /// The most chunks a file is cut into.
    public static let maximumChunkCount = 65_536
    /// The most chunk hashes a manifest may list: what fits a maximum frame.
    public static let maximumManifestChunkCount = 500_000
    /// The largest chunk: files above 1 TiB get more than 65,536 chunks of this size.
    public static let maximumChunkSize = 16 * 1024 * 1024

    /// The chunk size for a file.
    /// - Parameter fileSize: the file's size in bytes.
    public static func chunkSize(forFileSize fileSize: UInt64) -> Int {
        var size = Self.baseChunkSize
        while size < Self.maximumChunkSize && fileSize > UInt64(size) * UInt64(Self.maximumChunkCount) {
            size *= 2
        }
        return size
    }

    /// The number of chunks of a file: at least one, so that an empty file has a
    /// (zero-length) chunk and is transferred like any other.
    public static func chunkCount(fileSize: UInt64, chunkSize: Int) -> Int {
        guard fileSize > 0 else { return 1 }
        // Sizes come from the network: round up without `fileSize + chunkSize - 1`, which
        // overflows near 2^64, and clamp a count beyond Int (a lie no caller accepts).
        return Int(clamping: (fileSize - 1) / UInt64(chunkSize) + 1)
    }
}
