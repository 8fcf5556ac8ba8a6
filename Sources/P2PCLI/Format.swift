import Foundation
import P2P
import Synchronization

/// Numbers as people read them.
enum Format {
    /// "1.5 GiB", "512 KiB", "17 B".
    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: value < 10 ? "%.1f %@" : "%.0f %@", value, units[unit])
    }

    /// "3s", "2m05s", "1h02m".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total)s" }
        if total < 3600 { return String(format: "%dm%02ds", total / 60, total % 60) }
        return String(format: "%dh%02dm", total / 3600, (total % 3600) / 60)
    }

    /// A table with left-aligned columns.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

/// Shows download progress on stderr: one line rewritten in place on a terminal, a plain
/// line every few seconds otherwise.
final class ProgressPrinter: Sendable {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private let lastPlain = Mutex(Date.distantPast)

    func show(_ progress: DownloadProgress) {
        let percent = progress.totalBytes > 0 ? Double(progress.bytesHeld) * 100 / Double(progress.totalBytes) : 100
        let line = String(
            format: "%@ %5.1f%% %@ of %@  %@/s  %d peer%@  ETA %@",
            progress.name,
            percent,
            Format.bytes(progress.bytesHeld),
            Format.bytes(progress.totalBytes),
            Format.bytes(Int64(progress.bytesPerSecond)),
            progress.activePeers,
            progress.activePeers == 1 ? "" : "s",
            progress.secondsLeft.map(Format.duration) ?? "?"
        )
        if self.isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else {
            let now = Date()
            let due = self.lastPlain.withLock { last -> Bool in
                guard now.timeIntervalSince(last) >= 2 else { return false }
                last = now
                return true
            }
            if due { Console.error("progress: " + line) }
        }
    }

    /// Ends the in-place line, if any.
    func finish() {
        if self.isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
