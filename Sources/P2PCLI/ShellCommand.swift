import ArgumentParser
import Foundation
import P2P
import ServiceLifecycle

/// `p2p` or `p2p shell`: run a peer with the interactive command loop (the seed's
/// `Peer.start`). Commands come from standard input, one per line, whether or not it is a
/// terminal, so scripts can drive it; end of input is `exit`.
struct ShellCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell",
        abstract: "Run a peer with an interactive command loop (the default)."
    )

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let (peer, logger) = try await PeerRunner.makePeer(self.options)
        try await PeerRunner.run([peer], finishing: [Shell(peer: peer)], logger: logger)
    }
}

/// The command loop: reads lines, runs commands, prints results.
struct Shell: Service {
    let peer: Peer

    static let help = """
        commands:
          list                 files in the swarm and here, with chunk counts
          download <file>      download a file from every peer that has it
          peers [--json]       the peers found on the network
          help                 this text
          exit                 announce 'stop' and quit (also: quit, end of input)
        """

    func run() async throws {
        let lines = StandardInputLines.stream()
        Console.out(
            "p2p peer \(self.peer.id.short) on transfer port \(self.peer.transferPort); type 'help' for commands"
        )
        self.prompt()
        await cancelWhenGracefulShutdownIgnoringErrors {
            for await line in lines {
                if await !self.execute(line) { return }
                self.prompt()
            }
        }
    }

    /// Runs one command line.
    /// - Returns: false when the shell should end.
    func execute(_ line: String) async -> Bool {
        let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let command = words.first else { return true }
        switch command.lowercased() {
        case "exit", "quit":
            return false
        case "help", "?":
            Console.out(Self.help)
        case "list", "ls":
            Console.out(await SwarmListing.gather(self.peer).table)
        case "download", "get":
            guard words.count >= 2 else {
                Console.out("usage: download <file>")
                return true
            }
            // The name is the rest of the line, so names with spaces work.
            let name = String(line.drop { $0.isWhitespace }.dropFirst(command.count).drop { $0.isWhitespace })
            await self.download(name.trimmingCharacters(in: .whitespaces))
        case "peers":
            let peers = self.peer.table.servingPeers()
            Console.out(words.contains("--json") ? Console.json(peers.map(PeerReport.init)) : PeerReport.table(peers))
        default:
            Console.out("unknown command '\(command)'; type 'help' for the list")
        }
        return true
    }

    private func download(_ name: String) async {
        guard let downloader = self.peer.downloader() else { return }
        let printer = ProgressPrinter()
        do {
            let result = try await downloader.download(name: name, progress: { printer.show($0) })
            printer.finish()
            Console.out(DownloadReport(result).summary)
        } catch {
            printer.finish()
            Console.out("download failed: \(error)")
        }
    }

    private func prompt() {
        guard isatty(STDIN_FILENO) == 1 else { return }
        Console.write("p2p> ")
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
