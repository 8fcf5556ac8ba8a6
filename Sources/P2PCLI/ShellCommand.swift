import ArgumentParser
import Foundation
import P2P
import ServiceLifecycle
import Synchronization
import UnixSignals
import _NIOFileSystem

/// `p2p` or `p2p shell`: run a peer with the interactive command loop (the seed's
/// `Peer.start`). Commands come from standard input, one per line, whether or not it is a
/// terminal, so scripts can drive it; end of input is `exit`.
struct ShellCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell",
        abstract: "Run a peer with an interactive command loop (the default)."
    )

    @OptionGroup var options: CommonOptions
    @OptionGroup var gatewayOptions: GatewayOptions
    @OptionGroup var acceptOptions: AcceptOptions

    func validate() throws {
        try self.gatewayOptions.validate(with: self.options)
        try self.acceptOptions.validate(with: self.options)
    }

    func run() async throws {
        let (peer, logger) = try await PeerRunner.makePeer(self.options) { $0.delivery = self.acceptOptions.policy }
        let gateway = try self.gatewayOptions.gateway(for: peer, common: self.options, logger: logger)
        // SIGINT is the shell's own: it cancels the download under way, and ends the shell
        // only when none is.
        try await PeerRunner.run(
            [peer] + (gateway.map { [$0] } ?? []),
            finishing: [Shell(peer: peer, started: .now)],
            shutdownSignals: [.sigterm],
            logger: logger
        )
    }
}

/// The command loop: reads lines, runs commands, prints results.
struct Shell: Service {
    let peer: Peer
    /// When the peer started: the first `list` waits for the first round of discovery.
    let started: ContinuousClock.Instant

    /// How long a peer listens before its first listing, as `p2p ls --wait` does.
    static let firstListingDelay: Duration = .seconds(1)

    static let help = """
        commands:
          list                 files in the swarm and here, with chunk counts
          download <file> [--timeout S] [--replace]
                               download a file (or a shared folder) from every peer that has
                               it (Ctrl-C cancels it and keeps what arrived for the next attempt)
          peers [NAME...] [--json]
                               the peers found on the network (or those named)
          send <path> [to NAME...]
                               deliver a file to every accepting peer (or those named)
                               and wait for their receipts (Ctrl-C stops waiting)
          accept on|off        take deliveries from peers with the network key, or not
          help                 this text
          exit                 announce 'stop' and quit (also: quit, end of input, Ctrl-C)
        """

    func run() async throws {
        let lines = StandardInputLines.stream()
        let interrupts = await UnixSignalsSequence(trapping: .sigint)
        let current = CurrentDownload()
        Console.out(
            "p2p peer \(self.peer.id.short) on transfer port \(self.peer.transferPort); type 'help' for commands"
        )
        self.prompt()
        await cancelWhenGracefulShutdownIgnoringErrors {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Ends the shell when nothing is under way to cancel.
                    for await _ in interrupts where !current.cancel() { return }
                }
                group.addTask {
                    for await line in lines {
                        if await !self.execute(line, current: current) { return }
                        self.prompt()
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Runs one command line.
    /// - Returns: false when the shell should end.
    func execute(_ line: String, current: CurrentDownload = CurrentDownload()) async -> Bool {
        let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let command = words.first else { return true }
        switch command.lowercased() {
        case "exit", "quit":
            return false
        case "help", "?":
            Console.out(Self.help)
        case "list", "ls":
            try? await Task.sleep(until: self.started + Self.firstListingDelay)
            Console.out(PeerReport.withForeignKeyNote(await SwarmListing.gather(self.peer).table, of: self.peer))
        case "download", "get":
            switch Result(parsing: String(line.drop { $0.isWhitespace }.dropFirst(command.count))) {
            case .success(let request): await self.download(request, current: current)
            case .failure(let problem): Console.out(problem.message)
            }
        case "peers":
            let named = words.dropFirst().filter { $0 != "--json" }
            do {
                let peers = try PeerReport.selected(self.peer.table.servingPeers(), named: Array(named))
                Console.out(
                    words.contains("--json") ? Console.json(PeerReport.reports(peers)) : PeerReport.table(peers)
                )
            } catch {
                Console.out("\(error)")
            }
        case "accept":
            switch words.dropFirst().first?.lowercased() {
            case "on", "off":
                do {
                    try self.peer.deliveries?.setAccepting(words[1].lowercased() == "on")
                    Console.out(
                        self.peer.deliveries?.isAccepting == true ? "accepting deliveries" : "not accepting deliveries"
                    )
                } catch {
                    Console.out("\(error)")
                }
            default:
                Console.out(
                    "usage: accept on|off (now \(self.peer.deliveries?.isAccepting == true ? "on" : "off"))"
                )
            }
        case "send":
            await self.send(Array(words.dropFirst()), current: current)
        default:
            Console.out("unknown command '\(command)'; type 'help' for the list")
        }
        return true
    }

    private func download(_ request: DownloadRequest, current: CurrentDownload) async {
        guard let downloader = self.peer.downloader() else { return }
        let printer = ProgressPrinter()
        let task = Task {
            let deadline = request.timeout.map { ContinuousClock.now + $0 }
            switch try await downloader.lookUpItem(name: request.name, idPrefix: nil, deadline: deadline) {
            case .file(let file):
                let result = try await downloader.download(
                    name: request.name,
                    idPrefix: file.id.description,
                    timeout: deadline.map { $0 - ContinuousClock.now },
                    replaceExisting: request.replace,
                    progress: { printer.show($0) }
                )
                return DownloadReport(result).summary
            case .collection(let collection):
                let result = try await downloader.downloadCollection(
                    collection,
                    timeout: deadline.map { $0 - ContinuousClock.now },
                    progress: { printer.show($0) }
                )
                return CollectionDownloadReport(result).summary
            }
        }
        current.set(task)
        defer { current.clear() }
        switch await task.result {
        case .success(let summary):
            printer.finish()
            Console.out(summary)
        case .failure(let error) where error is CancellationError:
            printer.finish()
            Console.out("download cancelled; what arrived is kept for the next attempt")
        case .failure(let error):
            printer.finish()
            Console.out("download failed: \(error)")
        }
    }

    /// `send PATH [to NAME...]`: delivers one file or folder, as `p2p send` does, until every target
    /// has sent its receipt (Ctrl-C stops waiting; the targets keep what they have).
    private func send(_ words: [String], current: CurrentDownload) async {
        guard let path = words.first, words.count == 1 || words.dropFirst().first == "to",
            let store = self.peer.store
        else {
            Console.out("usage: send <path> [to NAME...]")
            return
        }
        let names = Array(words.dropFirst(2))
        let printer = DeliveryPrinter()
        let task = Task {
            let item = try await store.shareForDelivery(FilePath(path))
            return try await self.peer.deliver(
                [item],
                to: names.isEmpty || names == ["all"] ? .all : .named(names),
                timeout: nil,
                update: { printer.show($0) }
            )
        }
        current.set(task)
        defer { current.clear() }
        switch await task.result {
        case .success(let tracker):
            switch tracker.verdict(now: .now) {
            case .delivered:
                let labels = tracker.targets.values.filter { $0.phase == .verified }.map(\.label).sorted()
                Console.out("delivered \(path) to \(labels.joined(separator: ", ")), each with a verified receipt")
            case .failed(let lines), .timedOut(let lines):
                Console.out((["send failed:"] + lines).joined(separator: "\n  "))
            case .going:
                Console.out(
                    (["send stopped; the targets keep what they have:"] + tracker.missing()).joined(separator: "\n  ")
                )
            }
        case .failure(let error):
            Console.out("send failed: \(error)")
        }
    }

    private func prompt() {
        guard isatty(STDIN_FILENO) == 1 else { return }
        Console.write("p2p> ")
    }
}

/// The shell's download under way, if any, so that Ctrl-C can cancel it; it ends with the
/// line that says what was downloaded.
final class CurrentDownload: Sendable {
    private let cancelTask = Mutex<(@Sendable () -> Void)?>(nil)

    /// The task under way: a download or a send.
    func set<Success: Sendable>(_ task: Task<Success, any Error>) {
        self.cancelTask.withLock { $0 = { task.cancel() } }
    }

    /// The task under way is over.
    func clear() {
        self.cancelTask.withLock { $0 = nil }
    }

    /// Cancels the task under way.
    /// - Returns: whether there was one.
    func cancel() -> Bool {
        guard let cancel = self.cancelTask.withLock({ $0 }) else { return false }
        cancel()
        return true
    }
}

/// `download NAME [--timeout S] [--replace]` as typed in the shell; the name is the rest
/// of the line, so names with spaces work.
struct DownloadRequest: Equatable {
    var name: String
    var timeout: Duration?
    var replace = false

    struct Problem: Error {
        var message: String
    }

    static let usage = "usage: download <file> [--timeout S] [--replace]"

    /// Parses what follows `download`.
    init(parsing text: String) throws(Problem) {
        var words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        var timeout: Duration? = nil
        var replace = false
        // Options come last, so that a name may contain spaces.
        while words.count >= 1 {
            if words.last == "--replace" {
                replace = true
                words.removeLast()
            } else if words.count >= 2, words[words.count - 2] == "--timeout" {
                guard let seconds = Double(words[words.count - 1]), seconds > 0,
                    seconds <= GetCommand.longestTimeout
                else {
                    throw Problem(message: "--timeout must be a positive number of seconds")
                }
                timeout = .milliseconds(Int64(seconds * 1000))
                words.removeLast(2)
            } else {
                break
            }
        }
        let name = words.joined(separator: " ")
        guard !name.isEmpty else { throw Problem(message: Self.usage) }
        if let problem = FileName.problem(with: name) {
            throw Problem(message: "refused file name '\(name)': \(problem)")
        }
        self.name = name
        self.timeout = timeout
        self.replace = replace
    }
}

extension Result where Success == DownloadRequest, Failure == DownloadRequest.Problem {
    init(parsing text: String) {
        self = Result { () throws(DownloadRequest.Problem) in try DownloadRequest(parsing: text) }
    }
}

/// Lines of standard input, read on a thread of their own so that a blocking read never
/// holds one of the few threads async code runs on.
enum StandardInputLines {
    static func stream() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(64))
        Thread.detachNewThread {
            while let line = readLine(strippingNewline: true) {
                continuation.yield(line)
            }
            continuation.finish()
        }
        return stream
    }
}
