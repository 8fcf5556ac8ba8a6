import ArgumentParser

/// `p2p serve`: run a peer without the interactive loop until SIGINT or SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a peer until SIGINT or SIGTERM, then announce 'stop' and exit."
    )

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let (peer, logger) = try await PeerRunner.makePeer(self.options)
        try await PeerRunner.run([peer], logger: logger)
    }
}
