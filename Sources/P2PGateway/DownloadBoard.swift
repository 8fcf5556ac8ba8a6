import P2P

/// The downloads the gateway runs, as a value: which request starts a download and which
/// joins one under way, what each has done, which changes are worth an event, and which
/// ended downloads are still shown. Time comes in as seconds on the caller's clock.
public struct DownloadBoard: Sendable {
    /// What to do about a request for a file.
    public enum Start: Sendable, Equatable {
        /// Start a download: none is under way.
        case begin
        /// One is under way already: follow it.
        case follow
    }

    private struct Entry: Sendable {
        var info: TransferInfo
        var started: Double
        var ended: Double?
        /// When an event last went out about its progress.
        var lastProgressEvent: Double = -.infinity
    }

    private var entries: [FileID: Entry] = [:]
    /// Ended downloads kept for the API, oldest first.
    private var ended: [FileID] = []

    /// The most ended downloads still shown.
    public let maximumEnded: Int
    /// The shortest interval between progress events of one download.
    public let progressInterval: Double

    /// An empty board.
    /// - Parameters:
    ///   - maximumEnded: the most ended downloads still shown.
    ///   - progressInterval: seconds between progress events of one download.
    public init(maximumEnded: Int = 32, progressInterval: Double = 1) {
        self.maximumEnded = maximumEnded
        self.progressInterval = progressInterval
    }

    /// A request for a file: starts its download unless one is under way.
    /// - Parameters:
    ///   - id: the file.
    ///   - name: its name.
    ///   - size: its size, if known.
    ///   - now: the time.
    /// - Returns: whether to start a download, and the event to send if one starts.
    public mutating func request(_ id: FileID, name: String, size: UInt64?, now: Double) -> (Start, TransferInfo?) {
        if let entry = self.entries[id], !entry.info.hasEnded { return (.follow, nil) }
        self.ended.removeAll { $0 == id }
        let info = TransferInfo(
            id: id.description,
            name: name,
            size: Int64(size ?? 0),
            state: .starting,
            bytes: 0,
            bytesPerSecond: 0,
            peers: 0,
            etaSeconds: nil,
            seconds: 0,
            error: nil
        )
        self.entries[id] = Entry(info: info, started: now)
        return (.begin, info)
    }

    /// A download's progress.
    /// - Returns: the event to send, at most one per `progressInterval` (and at once when
    ///   chunks start to arrive).
    public mutating func progress(_ id: FileID, _ progress: DownloadProgress, now: Double) -> TransferInfo? {
        guard var entry = self.entries[id], !entry.info.hasEnded else { return nil }
        let first = entry.info.state == .starting
        entry.info.state = .fetching
        entry.info.size = progress.totalBytes
        entry.info.bytes = progress.bytesHeld
        entry.info.bytesPerSecond = progress.bytesPerSecond
        entry.info.peers = progress.activePeers
        entry.info.etaSeconds = progress.secondsLeft
        entry.info.seconds = now - entry.started
        let due = first || now - entry.lastProgressEvent >= self.progressInterval
        if due { entry.lastProgressEvent = now }
        self.entries[id] = entry
        return due ? entry.info : nil
    }

    /// A download ended.
    /// - Parameters:
    ///   - id: the file.
    ///   - state: how: `finished`, `failed` or `cancelled`.
    ///   - size: the file's size, when it finished.
    ///   - error: why it failed.
    ///   - now: the time.
    /// - Returns: the event to send.
    public mutating func end(
        _ id: FileID,
        as state: TransferInfo.State,
        size: UInt64? = nil,
        error: String? = nil,
        now: Double
    ) -> TransferInfo? {
        guard var entry = self.entries[id], !entry.info.hasEnded else { return nil }
        entry.info.state = state
        entry.info.error = error
        entry.info.bytesPerSecond = 0
        entry.info.etaSeconds = nil
        entry.info.seconds = now - entry.started
        entry.ended = now
        if let size {
            entry.info.size = Int64(size)
            entry.info.bytes = Int64(size)
        }
        self.entries[id] = entry
        self.ended.append(id)
        while self.ended.count > self.maximumEnded {
            self.entries[self.ended.removeFirst()] = nil
        }
        return entry.info
    }

    /// One download as it stands.
    public func info(_ id: FileID, now: Double) -> TransferInfo? {
        guard var entry = self.entries[id] else { return nil }
        if !entry.info.hasEnded { entry.info.seconds = now - entry.started }
        return entry.info
    }

    /// Every download shown, those under way first, each group by start.
    public func all(now: Double) -> [TransferInfo] {
        self.entries.sorted {
            ($0.value.ended != nil ? 1 : 0, $0.value.started) < ($1.value.ended != nil ? 1 : 0, $1.value.started)
        }
        .compactMap { self.info($0.key, now: now) }
    }
}
