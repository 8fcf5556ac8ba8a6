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

    /// Prints to stdout and flushes, since stdout is block-buffered when piped.
    static func out(_ text: String) {
        print(text)
        fflush(nil)
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
