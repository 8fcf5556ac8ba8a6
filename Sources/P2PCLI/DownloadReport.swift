import P2P
import _NIOFileSystem

/// What `p2p get --json` prints when a download finishes.
struct DownloadReport: Codable {
    var name: String
    var id: String
    var size: UInt64
    var path: String
    var seconds: Double
    /// Peer id → bytes received from it in this run.
    var bytesFromPeers: [String: Int64]
    /// Chunks that were already here (resumed from a `.partial`, or cached).
    var chunksAlreadyHeld: Int

    init(_ result: DownloadResult) {
        self.name = result.manifest.name.value
        self.id = result.manifest.id.description
        self.size = result.manifest.size
        self.path = result.path.string
        self.seconds = result.seconds
        self.bytesFromPeers = Dictionary(
            uniqueKeysWithValues: result.bytesFromPeer.map { ($0.key.description, $0.value) }
        )
        self.chunksAlreadyHeld = result.chunksAlreadyHeld
    }

    /// One line for people.
    var summary: String {
        let peers = self.bytesFromPeers.values.count { $0 > 0 }
        guard peers > 0 else {
            return
                "\(self.name) (\(Format.bytes(Int64(self.size))), id \(self.id.prefix(12))) is already here: \(self.path)"
        }
        return "downloaded \(self.name) (\(Format.bytes(Int64(self.size)))) in \(Format.duration(self.seconds)) "
            + "from \(Format.count(peers, "peer")) to \(self.path)"
    }
}

/// What `p2p get --json` prints when a folder (a collection) is downloaded.
struct CollectionDownloadReport: Codable {
    /// Always "folder", telling this summary from a file's.
    var kind = "folder"
    var name: String
    var id: String
    /// The sum of its files' sizes.
    var size: UInt64
    var fileCount: Int
    var path: String
    var seconds: Double
    /// Files fetched by this run, and files an earlier run had already fetched.
    var filesFetched: Int
    var filesAlreadyHeld: Int
    /// Peer id → bytes received from it in this run.
    var bytesFromPeers: [String: Int64]

    init(_ result: CollectionDownloadResult) {
        self.name = result.manifest.name.value
        self.id = result.manifest.id.description
        self.size = result.manifest.totalSize
        self.fileCount = result.manifest.files.count
        self.path = result.path.string
        self.seconds = result.seconds
        self.filesFetched = result.filesFetched
        self.filesAlreadyHeld = result.filesAlreadyHeld
        self.bytesFromPeers = Dictionary(
            uniqueKeysWithValues: result.bytesFromPeer.map { ($0.key.description, $0.value) }
        )
    }

    /// One line for people.
    var summary: String {
        let what = "\(self.name)/ (\(Format.count(self.fileCount, "file")), \(Format.bytes(Int64(self.size))))"
        guard self.filesFetched > 0 else { return "\(what) is already here: \(self.path)" }
        let peers = self.bytesFromPeers.values.count { $0 > 0 }
        return "downloaded \(what) in \(Format.duration(self.seconds)) from \(Format.count(peers, "peer")) "
            + "to \(self.path)"
    }
}
