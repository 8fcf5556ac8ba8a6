import ArgumentParser

/// `p2p`: share folders with the peers on this network and download from all of them.
@main
struct P2PCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p2p",
        abstract: "Peer-to-peer file transfer for the local network.",
        discussion: """
            Peers find each other by UDP broadcast, share a folder each, and download a file \
            from every peer that holds chunks of it at once, verifying every chunk.
            """,
        version: "0.1.0",
        subcommands: [
            ShellCommand.self, ServeCommand.self, GetCommand.self, LsCommand.self, PeersCommand.self,
            SendCommand.self, DoctorCommand.self,
            KeyCommand.self,
        ],
        defaultSubcommand: ShellCommand.self
    )
}
