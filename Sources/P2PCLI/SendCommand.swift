import ArgumentParser
import P2P
import ServiceLifecycle
import _NIOFileSystem

/// `p2p send PATH...`: deliver files and folders to other peers, which fetch them through
/// the swarm.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract:
            "Deliver files or folders to peers that accept deliveries ('serve --accept'), and wait for their receipts.",
        discussion: """
            The targets fetch through the swarm, so each chunk leaves this peer about once. \
            Exits 0 when every target has verified everything and sent a receipt signed with \
            the network key; on timeout, exits 1 naming who is missing what.
            """
    )

    @Argument(help: "The files or folders to deliver (a folder arrives as a whole tree).")
    var paths: [String]

    @Option(
        name: .customLong("to"),
        help: ArgumentHelp(
            "Whom to deliver to: 'all' (every accepting peer heard), or a device name, its name#id form, "
                + "or an id prefix (repeatable).",
            valueName: "all|name"
        )
    )
    var targets: [String] = []

    @Option(parsing: .unconditional, help: "Give up after this many seconds (targets keep what they have).")
    var timeout: Double?

    @Flag(help: "Print the receipts as JSON.")
    var json = false

    @OptionGroup var options: CommonOptions

    func validate() throws {
        guard !self.paths.isEmpty else { throw ValidationError("name at least one file or folder to send") }
        if let timeout = self.timeout, !(timeout > 0 && timeout <= GetCommand.longestTimeout) {
            throw ValidationError("--timeout must be a positive number of seconds, not \(timeout)")
        }
        if self.targets.contains("all") && self.targets.count > 1 {
            throw ValidationError("--to all names every accepting peer: give it alone")
        }
        if try self.options.secretText() == nil {
            throw ValidationError(
                "send needs the network key (--secret, --secret-file or P2P_SECRET): targets take deliveries "
                    + "only from peers that hold it"
            )
        }
    }

    /// Who receives.
    var selection: DeliveryTracker.Selection {
        self.targets.isEmpty || self.targets == ["all"] ? .all : .named(self.targets)
    }

    func run() async throws {
        // The sender pushes nothing to random peers: a peer that does not accept gets nothing.
        let (peer, logger) = try await PeerRunner.makePeer(self.options) { $0.distribution.interval = .zero }
        try await PeerRunner.run([peer], finishing: [SendTask(command: self, peer: peer)], logger: logger)
    }

    private struct SendTask: Service {
        let command: SendCommand
        let peer: Peer

        func run() async throws {
            guard let store = self.peer.store else { return }
            var items: [DeliveryItem] = []
            for path in self.command.paths {
                do {
                    items.append(try await store.shareForDelivery(FilePath(path)))
                } catch {
                    throw P2PError(code: error.code, "cannot send \(path): \(error)")
                }
            }
            let printer = DeliveryPrinter()
            // SIGINT or SIGTERM ends the send where it stands: what is missing is said, and
            // the targets keep what they have.
            let offered = items
            let tracker = try await cancelWhenGracefulShutdown {
                try await self.peer.deliver(
                    offered,
                    to: self.command.selection,
                    timeout: self.command.timeout.map { .milliseconds(Int64($0 * 1000)) },
                    quietPeriod: .milliseconds(Int64(max(1, self.command.options.announceInterval) * 1000)),
                    update: { printer.show($0) }
                )
            }
            printer.show(tracker)
            if self.command.json { Console.out(Console.json(ReceiptReport.all(tracker))) }
            let verdict = tracker.verdict(now: .now)
            switch verdict {
            case .delivered:
                let names = tracker.targets.values.filter { $0.phase == .verified }.map(\.label).sorted()
                if !self.command.json {
                    let what = items.count == 1 ? "\(items[0].name)" : Format.count(items.count, "item")
                    Console.out(
                        "delivered \(what) (\(Format.bytes(Int64(tracker.totalBytes)))) to "
                            + "\(Format.count(names.count, "peer")): \(names.joined(separator: ", ")), "
                            + "each with a verified receipt"
                    )
                }
            case .failed(let lines):
                throw P2PError(code: .notFound, (["not delivered:"] + lines).joined(separator: "\n  "))
            case .timedOut(let lines):
                throw P2PError(code: .timedOut, (["send timed out:"] + lines).joined(separator: "\n  "))
            case .going:
                throw P2PError(
                    code: .timedOut,
                    (["send stopped; the targets keep what they have:"] + tracker.missing()).joined(separator: "\n  ")
                )
            }
        }
    }
}
