import Foundation
import Logging

/// Where the CLI writes: results to stdout, logs and errors to stderr, so `--json`
/// output stays clean.
enum Console {
    /// Sets up swift-log: every library log line to stderr at `level` and above.
    static func bootstrapLogging(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Prints a line to stdout at once.
    static func out(_ text: String) {
        self.write(text + "\n")
    }

    /// Writes to stdout at once, with one `write(2)` and no stdio buffer.
    ///
    /// Not `print` then `fflush(nil)`: glibc's `fflush(NULL)` locks every open stream,
    /// stdin included, and the shell's reader thread holds stdin's lock while it waits in
    /// `readLine` for the next line. The flush then waited for the user's next command, so
    /// a script that waits for an answer before sending more hung, and the prompt never
    /// showed on a terminal.
    static func write(_ text: String) {
        try? FileHandle.standardOutput.write(contentsOf: Data(text.utf8))
    }

    /// Prints one line to stderr.
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Whether stdout is a terminal, for progress lines and prompts.
    static var isTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    /// Encodes a value as pretty, key-sorted JSON.
    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}
