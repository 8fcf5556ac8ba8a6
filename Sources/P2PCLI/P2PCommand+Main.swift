import ArgumentParser
import Foundation
import P2P

extension P2PCommand {
    /// Parses the arguments and runs the command, like argument-parser's own `main()`, except
    /// that a bad argument is reported as one line on stderr (SPEC §6: "one clear line on
    /// stderr and a non-zero exit"), not the message followed by the usage screen.
    static func main() async {
        // Before the peer starts, so that its first chunk buffers are kept for reuse too
        // (`AllocatorTuning`; the settings are process-wide).
        AllocatorTuning.apply()
        let command: any ParsableCommand
        do {
            command = try await Self.asyncParseAsRoot()
        } catch {
            let message = Self.oneLine(Self.message(for: error))
            // Help, --version and messages argument-parser leaves empty keep its output.
            guard Self.exitCode(for: error) != .success, !message.isEmpty else { Self.exit(withError: error) }
            Console.error("p2p: \(message) (see '\(Self.helpCommand())')")
            Foundation.exit(Self.exitCode(for: error).rawValue)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var command = command
                try command.run()
            }
        } catch {
            Self.exit(withError: error)
        }
    }

    /// Folds a message of several lines (such as the list of valid values after an invalid
    /// one) into one: `... one of the following: trace, debug, info`.
    static func oneLine(_ message: String) -> String {
        let lines = message.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard let first = lines.first else { return "" }
        let rest = lines.dropFirst().map { $0.hasPrefix("- ") ? String($0.dropFirst(2)) : $0 }
        return rest.isEmpty ? first : first + " " + rest.joined(separator: ", ")
    }

    /// `p2p SUBCOMMAND --help` for the subcommand named on the command line, else `p2p --help`.
    static func helpCommand() -> String {
        let names = Self.configuration.subcommands.map { $0._commandName }
        if let named = CommandLine.arguments.dropFirst().first(where: { names.contains($0) }) {
            return "p2p \(named) --help"
        }
        return "p2p --help"
    }
}
