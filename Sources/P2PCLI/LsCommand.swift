import ArgumentParser
import P2P

/// `p2p ls`: list the swarm's files and exit.
struct LsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the files in the swarm and exit."
    )

    @OptionGroup var listening: ListeningOptions

    @Flag(
        help: """
            Print a JSON array of files {name, id, size, chunkCount, chunksInSwarm, peers: {id: chunks}} \
            and folders {kind: "folder", name, id, size, fileCount, peerNames}.
            """
    )
    var json = false

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let json = self.json
        try await ObserverListing.run(self.options, wait: self.listening.wait) { peer in
            let listing = await SwarmListing.gather(peer)
            guard json else { return PeerReport.withForeignKeyNote(listing.table, of: peer) }
            if let note = PeerReport.foreignKeyNote(peer) { Console.error(note) }
            return Console.json(listing.allReports)
        }
    }
}
