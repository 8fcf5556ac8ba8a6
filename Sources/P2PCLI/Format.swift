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

    /// "0.4s", "3s", "2m05s", "1h02m"; "?" for what cannot be told, which includes a
    /// negative value and anything beyond `longestDuration` (an ETA from a rate that has
    /// fallen almost to zero says nothing useful, and must not overflow an `Int`).
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0, seconds <= Self.longestDuration else { return "?" }
        if seconds < 1 { return String(format: "%.1fs", seconds) }
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total)s" }
        let minutes = total / 60
        let secondsPart = total % 60
        if total < 3600 { return "\(minutes)m" + (secondsPart < 10 ? "0" : "") + "\(secondsPart)s" }
        let minutesPart = minutes % 60
        return "\(total / 3600)h" + (minutesPart < 10 ? "0" : "") + "\(minutesPart)m"
    }

    /// The longest duration shown: 99 days.
    static let longestDuration: Double = 99 * 24 * 3600

    /// "1 peer", "0 peers", "3 peers".
    static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
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

    /// The progress line: name, share done, bytes, rate, peers, ETA.
    static func line(for progress: DownloadProgress) -> String {
        let percent = progress.totalBytes > 0 ? Double(progress.bytesHeld) * 100 / Double(progress.totalBytes) : 100
        let rate = progress.bytesPerSecond.isFinite ? Int64(min(max(progress.bytesPerSecond, 0), 1e15)) : 0
        return String(format: "%@ %5.1f%%", progress.name, percent)
            + " \(Format.bytes(progress.bytesHeld)) of \(Format.bytes(progress.totalBytes))"
            + "  \(Format.bytes(rate))/s  from \(Format.count(progress.activePeers, "peer"))"
            + "  ETA \(progress.secondsLeft.map(Format.duration) ?? "?")"
    }

    func show(_ progress: DownloadProgress) {
        let line = Self.line(for: progress)
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
