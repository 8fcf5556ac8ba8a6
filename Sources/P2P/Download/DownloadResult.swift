import _NIOFileSystem

/// What a finished download did.
public struct DownloadResult: Sendable {
    /// The file's manifest.
    public var manifest: Manifest
    /// Where the file is now.
    public var path: FilePath
    /// Seconds from start to the verified file.
    public var seconds: Double
    /// Bytes received from each peer in this run.
    public var bytesFromPeer: [PeerID: Int64]
    /// Chunks that were already held when the download started (resumed or cached).
    public var chunksAlreadyHeld: Int
}
