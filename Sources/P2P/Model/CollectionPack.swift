/// The small files of a collection end to end, as one swarm file: how a delivered folder of
/// many small files travels.
///
/// Fetched one by one, every file of a folder costs its own manifest, connections to every
/// peer of the swarm and a partial file, which for a file of a few KiB is far more than
/// its bytes. Packed, the folder's small files travel as one file of ordinary chunks, which
/// the swarm spreads as it spreads any file (the sender hands out each chunk about once,
/// the targets relay); each target then cuts the pack into the files and checks every one
/// against its file id, and fetches one by one whatever did not match.
///
/// The layout follows from the collection manifest alone, so the pack's file id is all
/// a sender has to add to an offer: the distinct files (by file id, name and size) of at least one byte
/// and under `memberSizeLimit`, in the manifest's canonical order, each at the end of the
/// one before, until the pack would pass `maximumSize`. A collection with fewer than two
/// such files has no pack.
public struct CollectionPack: Sendable, Equatable {
    /// One file in the pack.
    public struct Member: Sendable, Equatable {
        /// The file id.
        public var fileID: FileID
        /// The name its manifest carries: the last component of each of its paths.
        public var name: FileName
        /// Its size in bytes.
        public var size: UInt64
        /// Where its bytes start in the pack.
        public var offset: UInt64
        /// Every path of the collection that holds it, in canonical order.
        public var paths: [CollectionPath]
    }

    /// The files in the pack, in pack order.
    public let members: [Member]
    /// The pack's size in bytes: its members' total.
    public let size: UInt64

    /// Files this large or larger travel on their own, where one file's overhead is small
    /// beside its bytes.
    public static let memberSizeLimit: UInt64 = 1 << 20
    /// The largest pack: a sender writes its pack to disk before offering it.
    public static let maximumSize: UInt64 = 4 << 30
    /// The name the pack's manifest carries. Packs are never listed: the name only shows
    /// in logs.
    public static let fileName = try! FileName("p2p-pack")

    /// The pack of a collection, or `nil` when it has fewer than two files to pack.
    /// - Parameter manifest: the collection manifest.
    public init?(_ manifest: CollectionManifest) {
        var members: [Member] = []
        var index: [FileID: Int] = [:]
        var size: UInt64 = 0
        for file in manifest.files where file.size > 0 && file.size < Self.memberSizeLimit {
            if let known = index[file.fileID] {
                // The same file under another path: the same name and size, or the
                // manifest is lying about one of them, and that path is fetched on its own
                // (where the lie shows).
                if members[known].name == file.path.name && members[known].size == file.size {
                    members[known].paths.append(file.path)
                }
                continue
            }
            guard size + file.size <= Self.maximumSize else { continue }
            index[file.fileID] = members.count
            members.append(
                Member(fileID: file.fileID, name: file.path.name, size: file.size, offset: size, paths: [file.path])
            )
            size += file.size
        }
        guard members.count >= 2 else { return nil }
        self.members = members
        self.size = size
    }

    /// The paths the pack brings.
    public var paths: Set<CollectionPath> { Set(self.members.flatMap(\.paths)) }
}
