import ArgumentParser
import Logging
import P2P
import ServiceLifecycle

/// `p2p serve`: run a peer without the interactive loop until SIGINT or SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a peer until SIGINT or SIGTERM, then announce 'stop' and exit."
    )

    @OptionGroup var options: CommonOptions
    @OptionGroup var gatewayOptions: GatewayOptions
    @OptionGroup var acceptOptions: AcceptOptions

    func validate() throws {
        try self.gatewayOptions.validate(with: self.options)
        try self.acceptOptions.validate(with: self.options)
    }

    func run() async throws {
        let (peer, logger) = try await PeerRunner.makePeer(self.options, serving: true) {
            $0.delivery = self.acceptOptions.policy
        }
        if let store = peer.store {
            let shared = await store.inventory().filter(\.bitmap.isComplete)
            let bytes = shared.reduce(Int64(0)) { $0 + Int64($1.size) }
            let what = "\(Format.count(shared.count, "file")) (\(Format.bytes(bytes))) from \(self.options.share)"
            let ports = "transfer port \(peer.transferPort), discovery port \(self.options.discoveryPort)"
            logger.notice("serving \(what) on \(ports)")
            if self.acceptOptions.accept {
                logger.notice("accepting deliveries into \(self.options.downloads)")
            }
        }
        let gateway = try self.gatewayOptions.gateway(for: peer, common: self.options, logger: logger)
        try await PeerRunner.run([peer] + (gateway.map { [$0] } ?? []), logger: logger)
    }
}
