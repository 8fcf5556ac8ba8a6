/// One collection (a shared folder) a peer offers, as its collection list describes it.
public struct CollectionEntry: Sendable, Equatable {
    /// The collection id.
    public var id: FileID
    /// The folder's name.
    public var name: FileName
    /// How many files it holds.
    public var fileCount: Int { self.memberIDs.count }
    /// The sum of their sizes.
    public var totalSize: UInt64
    /// The file ids of its files, in the manifest's order (an id appears once per path
    /// that holds it), so that a listing can show the folder as one entry rather than
    /// its files one by one.
    public var memberIDs: [FileID]

    /// Creates an entry.
    public init(id: FileID, name: FileName, totalSize: UInt64, memberIDs: [FileID]) {
        self.id = id
        self.name = name
        self.totalSize = totalSize
        self.memberIDs = memberIDs
    }

    /// The entry that describes a collection manifest.
    /// - Parameter manifest: the collection.
    public init(_ manifest: CollectionManifest) {
        self.init(
            id: manifest.id,
            name: manifest.name,
            totalSize: manifest.totalSize,
            memberIDs: manifest.files.map(\.fileID)
        )
    }
}
