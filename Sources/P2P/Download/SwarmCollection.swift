/// A collection (shared folder) in the swarm, as the peers' collection lists describe it.
public struct SwarmCollection: Sendable, Equatable {
    /// The collection id.
    public var id: FileID
    /// The folder's name.
    public var name: FileName
    /// How many files it holds.
    public var fileCount: Int
    /// The sum of their sizes.
    public var totalSize: UInt64
    /// The file ids of its files.
    public var memberIDs: [FileID]
    /// The peers that offer it whole.
    public var holders: Set<PeerID>

    /// The swarm's collections, one per id, by name.
    /// - Parameter lists: each peer's collection list.
    /// - Returns: the collections, each with the peers that list it.
    public static func gather(_ lists: [(PeerID, [CollectionEntry])]) -> [SwarmCollection] {
        var collections: [FileID: SwarmCollection] = [:]
        for (peer, entries) in lists {
            for entry in entries {
                collections[entry.id, default: SwarmCollection(entry)].holders.insert(peer)
            }
        }
        return collections.values.sorted { ($0.name, $0.id) < ($1.name, $1.id) }
    }

    private init(_ entry: CollectionEntry) {
        self.id = entry.id
        self.name = entry.name
        self.fileCount = entry.fileCount
        self.totalSize = entry.totalSize
        self.memberIDs = entry.memberIDs
        self.holders = []
    }
}

/// What a name (or id prefix) given to `get` means in the swarm: a file or a collection.
public enum SwarmItem: Sendable {
    /// A file.
    case file(SwarmFile)
    /// A collection (a shared folder).
    case collection(SwarmCollection)

    /// Picks what a name (or id prefix) means among the swarm's files and collections.
    /// A file and a folder of the same name are as ambiguous as two files of one name:
    /// the user picks with `--id`.
    /// - Parameters:
    ///   - name: the name, or `nil` to go by id alone.
    ///   - idPrefix: hex digits the id must start with, if given.
    ///   - files: the swarm's files.
    ///   - collections: the swarm's collections.
    /// - Returns: the one item that matches.
    /// - Throws: `P2PError` (`notFound` or `ambiguous`) saying what matched.
    public static func resolve(
        name: String?,
        idPrefix: String?,
        files: [SwarmFile],
        collections: [SwarmCollection]
    ) throws(P2PError) -> SwarmItem {
        let prefix = idPrefix?.lowercased()
        let matchingCollections = collections.filter { collection in
            (name == nil || collection.name.value == name)
                && (prefix.map { collection.id.description.hasPrefix($0) } ?? true)
        }
        // Only files match: the name means what it means for a file download (`Downloader.resolve`).
        if matchingCollections.isEmpty {
            do {
                return .file(try Downloader.resolve(name: name, idPrefix: idPrefix, in: files))
            } catch let error as P2PError {
                throw error
            } catch {
                throw P2PError(code: .notFound, "\(error)")
            }
        }
        let matchingFiles = files.filter { file in
            (name == nil || file.name.value == name) && (prefix.map { file.id.description.hasPrefix($0) } ?? true)
        }
        let what = [name.map { "'\($0)'" }, idPrefix.map { "id \($0)…" }].compactMap { $0 }.joined(separator: " with ")
        switch (matchingFiles.count, matchingCollections.count) {
        case (0, 1):
            return .collection(matchingCollections[0])
        default:
            let choices =
                matchingFiles.map { "file \($0.id.short) (\($0.size) bytes)" }
                + matchingCollections.map { "folder \($0.id.short) (\($0.fileCount) files, \($0.totalSize) bytes)" }
            throw P2PError(
                code: .ambiguous,
                "\(what) names \(choices.count) different things: \(choices.joined(separator: ", ")); pick one with --id"
            )
        }
    }
}
