import ArgumentParser
import P2P
import ServiceLifecycle

/// `p2p ls`: list the swarm's files and exit.
struct LsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the files in the swarm and exit."
    )

    @OptionGroup var options: CommonOptions

    @Option(help: "Seconds to listen for peers before asking them.")
    var wait: Double = 1

    @Flag(help: "Print a JSON array of {name, id, size, chunkCount, chunksInSwarm, peers: {id: chunks}}.")
    var json = false

    func validate() throws {
        guard self.wait >= 0 && self.wait <= 3600 else {
            throw ValidationError("--wait must be between 0 and 3600 seconds")
        }
    }

    func run() async throws {
        let (peer, logger) = try await PeerRunner.makePeer(self.options, observer: true)
        try await PeerRunner.run(
            [peer],
            finishing: [ListTask(peer: peer, wait: self.wait, json: self.json)],
            logger: logger
        )
    }

    private struct ListTask: Service {
        let peer: Peer
        let wait: Double
        let json: Bool

        func run() async throws {
            guard await sleepUnlessShuttingDown(.milliseconds(Int(self.wait * 1000))) else { return }
            let listing = await SwarmListing.gather(self.peer)
            Console.out(self.json ? Console.json(listing.reports) : listing.table)
        }
    }
}
