import ArgumentParser
import P2P
import ServiceLifecycle

/// `--wait`, for the commands that listen to the swarm as an observer and print one
/// listing (`ls`, `peers`): how long discovery gets before the listing is taken.
struct ListeningOptions: ParsableArguments {
    @Option(help: "Seconds to listen for peers before listing.")
    var wait: Double = 1

    func validate() throws {
        guard self.wait >= 0 && self.wait <= 3600 else {
            throw ValidationError("--wait must be between 0 and 3600 seconds")
        }
    }
}

/// Runs an observer peer (it is not listed and serves nothing), waits, prints what
/// `listing` makes of the swarm, and exits; an error thrown by `listing` is the one line
/// printed, and the exit is non-zero.
enum ObserverListing {
    static func run(
        _ options: CommonOptions,
        wait: Double,
        listing: @escaping @Sendable (Peer) async throws -> String
    ) async throws {
        let (peer, logger) = try await PeerRunner.makePeer(options, observer: true)
        try await PeerRunner.run(
            [peer],
            finishing: [ListAfterWait(peer: peer, wait: wait, listing: listing)],
            logger: logger
        )
    }

    /// Waits, prints, and returns, which ends the service group.
    private struct ListAfterWait: Service {
        let peer: Peer
        let wait: Double
        let listing: @Sendable (Peer) async throws -> String

        func run() async throws {
            guard await sleepUnlessShuttingDown(.milliseconds(Int(self.wait * 1000))) else { return }
            Console.out(try await self.listing(self.peer))
        }
    }
}
