import _NIOFileSystem

/// Where a peer keeps its files.
public struct StorageConfiguration: Sendable {
    /// Files offered to others.
    public var shareDirectory: FilePath
    /// Finished downloads, and the downloads in progress (in its `.p2p-partials` folder).
    public var downloadsDirectory: FilePath
    /// Manifests, download records and the chunk cache.
    public var stateDirectory: FilePath
    /// The most bytes of pushed chunks kept in the cache.
    public var cacheLimit: Int64
    /// Whether a missing share folder is created rather than refused (true for the
    /// default folder, false for one the user named).
    public var createShareDirectory: Bool
    /// Whether a missing downloads folder is created rather than refused (true for the
    /// default folder, false for one the user named).
    public var createDownloadsDirectory: Bool

    /// The default cache limit: 1 GiB.
    public static let defaultCacheLimit: Int64 = 1 << 30

    /// Creates a configuration.
    /// - Parameters:
    ///   - shareDirectory: files offered to others.
    ///   - downloadsDirectory: where downloads go.
    ///   - stateDirectory: manifests, records, cache.
    ///   - cacheLimit: bytes of pushed chunks kept at most.
    ///   - createShareDirectory: whether a missing share folder is created.
    ///   - createDownloadsDirectory: whether a missing downloads folder is created.
    public init(
        shareDirectory: FilePath,
        downloadsDirectory: FilePath,
        stateDirectory: FilePath,
        cacheLimit: Int64 = StorageConfiguration.defaultCacheLimit,
        createShareDirectory: Bool = false,
        createDownloadsDirectory: Bool = true
    ) {
        self.shareDirectory = shareDirectory
        self.downloadsDirectory = downloadsDirectory
        self.stateDirectory = stateDirectory
        self.cacheLimit = cacheLimit
        self.createShareDirectory = createShareDirectory
        self.createDownloadsDirectory = createDownloadsDirectory
    }
}
