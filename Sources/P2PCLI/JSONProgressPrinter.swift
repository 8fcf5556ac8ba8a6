import Foundation
import P2P
import Synchronization

/// `get --progress json`: one JSON object a second on stdout, for scripts, before the
/// summary object. Each has `"type": "progress"`; the summary has none.
final class JSONProgressPrinter: Sendable {
    /// One progress line.
    struct Line: Codable, Equatable {
        var type = "progress"
        var name: String
        /// Bytes held and verified.
        var bytes: Int64
        /// The file's size.
        var size: Int64
        var bytesPerSecond: Double
        /// Peers that have sent chunks.
        var peers: Int
        /// Seconds left at the current rate; absent while it cannot be told.
        var etaSeconds: Double?

        init(_ progress: DownloadProgress) {
            self.name = progress.name
            self.bytes = progress.bytesHeld
            self.size = progress.totalBytes
            self.bytesPerSecond = progress.bytesPerSecond.isFinite ? (progress.bytesPerSecond * 10).rounded() / 10 : 0
            self.peers = progress.activePeers
            self.etaSeconds = progress.secondsLeft.map { ($0 * 10).rounded() / 10 }
        }
    }

    private let last = Mutex<ContinuousClock.Instant?>(nil)
    private let interval: Duration

    /// - Parameter interval: the time between lines.
    init(interval: Duration = .seconds(1)) {
        self.interval = interval
    }

    /// Prints a line if one is due: the first at once, then one per interval.
    func show(_ progress: DownloadProgress) {
        let now = ContinuousClock.now
        let due = self.last.withLock { last -> Bool in
            if let previous = last, now - previous < self.interval { return false }
            last = now
            return true
        }
        if due { Console.out(Console.json(Line(progress))) }
    }
}
