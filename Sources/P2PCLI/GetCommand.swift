import ArgumentParser
import P2P
import ServiceLifecycle

/// `p2p get NAME`: join, download and verify a file, exit.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download a file or a folder from the swarm, verify it, and exit.",
        discussion: """
            On timeout the data received is kept in the downloads folder's .p2p-partials \
            folder and the command exits non-zero saying which chunks are missing; the next \
            'get' resumes from it. A folder is put together there and moved into place once \
            every file in it is verified.
            """
    )

    @Argument(help: "The name of the file or folder in the swarm.")
    var name: String

    @Option(
        parsing: .unconditional,
        help: "Give up after this many seconds (the partial file is kept)."
    )
    var timeout: Double?

    @Option(help: "Hex digits the file id starts with, to pick among files of the same name.")
    var id: String?

    @Flag(help: "After the download, go on serving until SIGINT or SIGTERM.")
    var seed = false

    @Flag(help: "Replace a different file of the same name in the downloads folder.")
    var replace = false

    @Flag(help: "Print a JSON summary: name, id, size, path, seconds, bytes from each peer.")
    var json = false

    @Option(
        help: ArgumentHelp(
            "'json': a JSON line a second on stdout (bytes, size, rate, peers, ETA), then the summary as JSON.",
            valueName: "style"
        )
    )
    var progress: ProgressStyle?

    /// How progress is shown.
    enum ProgressStyle: String, ExpressibleByArgument, CaseIterable {
        /// JSON lines on stdout.
        case json
    }

    @OptionGroup var options: CommonOptions

    func validate() throws {
        if let problem = FileName.problem(with: self.name) {
            throw ValidationError("refused file name '\(self.name)': \(problem)")
        }
        if let timeout = self.timeout, !(timeout > 0 && timeout <= Self.longestTimeout) {
            throw ValidationError("--timeout must be a positive number of seconds, not \(timeout)")
        }
        if let id = self.id, id.isEmpty || !id.allSatisfy(\.isHexDigit) || id.count > 64 {
            throw ValidationError("--id takes hex digits of the file id")
        }
    }

    /// The longest timeout taken: ten years, far past any download, and well inside what
    /// a `Duration` holds.
    static let longestTimeout: Double = 10 * 365 * 24 * 3600

    func run() async throws {
        let (peer, logger) = try await PeerRunner.makePeer(self.options)
        let task = GetTask(command: self, peer: peer)
        try await PeerRunner.run([peer], finishing: [task], logger: logger)
    }

    private struct GetTask: Service {
        let command: GetCommand
        let peer: Peer

        func run() async throws {
            guard let downloader = self.peer.downloader() else { return }
            let printer = ProgressPrinter()
            let jsonPrinter = self.command.progress == .json ? JSONProgressPrinter() : nil
            let deadline = self.command.timeout.map { ContinuousClock.now + .milliseconds(Int64($0 * 1000)) }
            let show: @Sendable (DownloadProgress) -> Void = { progress in
                if let jsonPrinter { jsonPrinter.show(progress) } else { printer.show(progress) }
            }
            let asJSON = self.command.json || self.command.progress == .json
            do {
                let item = try await downloader.lookUpItem(
                    name: self.command.name,
                    idPrefix: self.command.id,
                    deadline: deadline
                )
                // What is left of the timeout once the name is resolved.
                let timeout = deadline.map { $0 - ContinuousClock.now }
                switch item {
                case .file(let file):
                    let result = try await downloader.download(
                        name: self.command.name,
                        idPrefix: file.id.description,
                        timeout: timeout,
                        replaceExisting: self.command.replace,
                        progress: show
                    )
                    printer.finish()
                    let report = DownloadReport(result)
                    Console.out(asJSON ? Console.json(report) : report.summary)
                case .collection(let collection):
                    let result = try await downloader.downloadCollection(collection, timeout: timeout, progress: show)
                    printer.finish()
                    let report = CollectionDownloadReport(result)
                    Console.out(asJSON ? Console.json(report) : report.summary)
                }
            } catch {
                printer.finish()
                throw error
            }
            if self.command.seed {
                // Serve until SIGINT or SIGTERM.
                while await sleepUnlessShuttingDown(.seconds(3600)) {}
            }
        }
    }
}
