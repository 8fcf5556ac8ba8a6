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

    let files: [SwarmFile]
    let localID: PeerID?
    /// How the holders are named.
    let names: PeerNames

    /// Gathers the listing from the swarm and, for a full peer, from its own store.
    static func gather(_ peer: Peer) async -> SwarmListing {
        let inventories = await peer.swarmInventories()
        var local: (PeerID, [InventoryEntry])? = nil
        if let store = peer.store { local = (peer.id, await store.inventory()) }
        return SwarmListing(
            files: Downloader.swarmFiles(inventories, local: local),
            localID: local?.0,
            names: PeerNames(inventories.map(\.0))
        )
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
        guard !self.files.isEmpty else { return "no files in the swarm" }
        let rows = self.reports.map { report -> [String] in
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
