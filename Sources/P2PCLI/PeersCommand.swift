import ArgumentParser
import P2P

/// `p2p peers`: list the peers discovered, then exit.
struct PeersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers",
        abstract: "List the peers on the network and exit."
    )

    @OptionGroup var listening: ListeningOptions

    @Flag(help: "Print a JSON array of {id, address, port}.")
    var json = false

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let json = self.json
        try await ObserverListing.run(self.options, wait: self.listening.wait) { peer in
            let peers = peer.table.servingPeers()
            guard json else { return PeerReport.withForeignKeyNote(PeerReport.table(peers), of: peer) }
            if let note = PeerReport.foreignKeyNote(peer) { Console.error(note) }
            return Console.json(peers.map(PeerReport.init))
        }
    }
}
