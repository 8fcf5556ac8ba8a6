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
    }

    let files: [SwarmFile]
    let localID: PeerID?

    /// Gathers the listing from the swarm and, for a full peer, from its own store.
    static func gather(_ peer: Peer) async -> SwarmListing {
        let inventories = await peer.swarmInventories()
        var local: (PeerID, [InventoryEntry])? = nil
        if let store = peer.store { local = (peer.id, await store.inventory()) }
        return SwarmListing(files: Downloader.swarmFiles(inventories, local: local), localID: local?.0)
    }

    var reports: [FileReport] {
        self.files.map { file in
            var peers: [String: Int] = [:]
            for (id, bitmap) in file.holders where id != self.localID {
                peers[id.description] = bitmap.setCount
            }
            return FileReport(
                name: file.name.value,
                id: file.id.description,
                size: file.size,
                chunkCount: file.chunkCount,
                chunksHere: self.localID.map { file.holders[$0]?.setCount ?? 0 },
                chunksInSwarm: file.availableChunks,
                peers: peers
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
            ]
        }
        return Format.table(["NAME", "SIZE", "HERE", "SWARM", "PEERS", "ID"], rows)
    }
}
