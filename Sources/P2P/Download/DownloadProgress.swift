/// How far a download has come, for progress lines.
public struct DownloadProgress: Sendable {
    /// The file.
    public var name: String
    /// Bytes held and verified.
    public var bytesHeld: Int64
    /// The file's size.
    public var totalBytes: Int64
    /// Bytes per second over the last few seconds.
    public var bytesPerSecond: Double
    /// Peers that have sent chunks so far: the count the final summary gives.
    public var activePeers: Int

    /// A progress report.
    /// - Parameters:
    ///   - name: the file.
    ///   - bytesHeld: bytes held and verified.
    ///   - totalBytes: the file's size.
    ///   - bytesPerSecond: the recent rate.
    ///   - activePeers: peers that have sent chunks so far.
    public init(name: String, bytesHeld: Int64, totalBytes: Int64, bytesPerSecond: Double, activePeers: Int) {
        self.name = name
        self.bytesHeld = bytesHeld
        self.totalBytes = totalBytes
        self.bytesPerSecond = bytesPerSecond
        self.activePeers = activePeers
    }

    /// Seconds left at the current rate, if it can be told: not while less than a byte a
    /// second arrives (a stalled source), when any figure would be meaningless.
    public var secondsLeft: Double? {
        guard self.bytesPerSecond >= 1 else { return nil }
        return Double(max(0, self.totalBytes - self.bytesHeld)) / self.bytesPerSecond
    }
}
