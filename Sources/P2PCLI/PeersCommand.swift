import ArgumentParser
import P2P
import ServiceLifecycle

/// `p2p peers`: list the peers discovered, then exit.
struct PeersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers",
        abstract: "List the peers on the network and exit."
    )

    @OptionGroup var options: CommonOptions

    @Option(help: "Seconds to listen for peers before listing them.")
    var wait: Double = 1

    @Flag(help: "Print a JSON array of {id, address, port}.")
    var json = false

    func validate() throws {
        guard self.wait >= 0 && self.wait <= 3600 else {
            throw ValidationError("--wait must be between 0 and 3600 seconds")
        }
    }

    func run() async throws {
        let (peer, logger) = try await PeerRunner.makePeer(self.options, observer: true)
        let lister = ListAfterWait(peer: peer, wait: self.wait, json: self.json)
        try await PeerRunner.run([peer], finishing: [lister], logger: logger)
    }

    /// Waits, prints the serving peers, and returns, which ends the group.
    private struct ListAfterWait: Service {
        let peer: Peer
        let wait: Double
        let json: Bool

        func run() async throws {
            guard await sleepUnlessShuttingDown(.milliseconds(Int(self.wait * 1000))) else { return }
            let peers = self.peer.table.servingPeers()
            Console.out(self.json ? Console.json(peers.map(PeerReport.init)) : PeerReport.table(peers))
        }
    }
}
