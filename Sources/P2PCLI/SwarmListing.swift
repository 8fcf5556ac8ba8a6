import P2P

/// The swarm's files as `list`, `p2p ls` and `p2p ls --json` show them (the seed's
/// `format_file_chunks`).
struct SwarmListing {
    /// One file in `ls --json`.
    struct FileReport: Codable {
        var name: String
        var id: String
        var size: UInt64
        var chunkCount: Int
        /// Chunks held here (absent for `p2p ls`, which holds nothing).
        var chunksHere: Int?
        /// Chunks held by at least one peer.
        var chunksInSwarm: Int
        /// Peer id → chunks it holds.
        var peers: [String: Int]
        /// Peer id → how listings name it (its device name, with the short id when several
        /// peers share the name).
        var peerNames: [String: String]
    }

    /// One folder (collection) in `ls --json`.
    struct FolderReport: Codable {
        /// Always "folder", telling folders from files.
        var kind = "folder"
        var name: String
        var id: String
        /// The sum of its files' sizes.
        var size: UInt64
        var fileCount: Int
        /// Whether this peer holds it (absent for `p2p ls`, which holds nothing).
        var here: Bool?
        /// Peer id → how listings name it, for the peers that offer the folder.
        var peerNames: [String: String]
    }

    /// An entry of `ls --json`: a file (as before folders were listed) or a folder.
    enum Report: Encodable {
        case file(FileReport)
        case folder(FolderReport)

        func encode(to encoder: any Encoder) throws {
            switch self {
            case .file(let file): try file.encode(to: encoder)
            case .folder(let folder): try folder.encode(to: encoder)
            }
        }
    }

    /// The files, without the files of the folders listed (a folder is one entry).
    let files: [SwarmFile]
    let folders: [SwarmCollection]
    let localID: PeerID?
    /// How the holders are named.
    let names: PeerNames

    /// Gathers the listing from the swarm and, for a full peer, from its own store.
    static func gather(_ peer: Peer) async -> SwarmListing {
        async let inventories = peer.swarmInventories()
        async let lists = peer.swarmCollectionLists()
        var local: (PeerID, [InventoryEntry])? = nil
        var collectionLists = await lists.map { ($0.0.id, $0.1) }
        if let store = peer.store {
            local = (peer.id, await store.inventory())
            collectionLists.append((peer.id, await store.collectionList()))
        }
        let folders = SwarmCollection.gather(collectionLists)
        let members = Set(folders.flatMap(\.memberIDs))
        let known = await inventories
        return SwarmListing(
            files: Downloader.swarmFiles(known, local: local).filter { !members.contains($0.id) },
            folders: folders,
            localID: local?.0,
            names: PeerNames(known.map(\.0))
        )
    }

    var folderReports: [FolderReport] {
        self.folders.map { folder in
            var peerNames: [String: String] = [:]
            for id in folder.holders where id != self.localID { peerNames[id.description] = self.names.label(id) }
            return FolderReport(
                name: folder.name.value,
                id: folder.id.description,
                size: folder.totalSize,
                fileCount: folder.fileCount,
                here: self.localID.map { folder.holders.contains($0) },
                peerNames: peerNames
            )
        }
    }

    /// Folders and files, for `ls --json`.
    var allReports: [Report] {
        self.folderReports.map(Report.folder) + self.reports.map(Report.file)
    }

    var reports: [FileReport] {
        self.files.map { file in
            var peers: [String: Int] = [:]
            var peerNames: [String: String] = [:]
            for (id, bitmap) in file.holders where id != self.localID {
                peers[id.description] = bitmap.setCount
                peerNames[id.description] = self.names.label(id)
            }
            return FileReport(
                name: file.name.value,
                id: file.id.description,
                size: file.size,
                chunkCount: file.chunkCount,
                chunksHere: self.localID.map { file.holders[$0]?.setCount ?? 0 },
                chunksInSwarm: file.availableChunks,
                peers: peers,
                peerNames: peerNames
            )
        }
    }

    /// The table for people.
    var table: String {
        guard !self.files.isEmpty || !self.folders.isEmpty else { return "no files in the swarm" }
        let folderRows = self.folderReports.map { report -> [String] in
            [
                report.name + "/",
                Format.bytes(Int64(report.size)),
                report.here.map { $0 ? "all" : "-" } ?? "-",
                Format.count(report.fileCount, "file"),
                "\(report.peerNames.count)",
                String(report.id.prefix(12)),
                Self.holders(report.peerNames.values.sorted()),
            ]
        }
        let rows =
            folderRows
            + self.reports.map { report -> [String] in
                [
                    report.name,
                    Format.bytes(Int64(report.size)),
                    report.chunksHere.map { "\($0)/\(report.chunkCount)" } ?? "-",
                    "\(report.chunksInSwarm)/\(report.chunkCount)",
                    "\(report.peers.count)",
                    String(report.id.prefix(12)),
                    Self.holders(report.peerNames.values.sorted()),
                ]
            }
        return Format.table(["NAME", "SIZE", "HERE", "SWARM", "PEERS", "ID", "HELD BY"], rows)
    }

    /// The first few holders by name, and how many more.
    static func holders(_ labels: [String]) -> String {
        let shown = labels.prefix(3).joined(separator: ", ")
        return labels.count > 3 ? shown + " +\(labels.count - 3)" : shown
    }
}
