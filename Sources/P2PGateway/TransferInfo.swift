/// A download the gateway runs, as the JSON API and the event stream show it.
public struct TransferInfo: Sendable, Equatable, Codable {
    /// Where a download is.
    public enum State: String, Sendable, Codable {
        /// Looking the file up and fetching its manifest.
        case starting
        /// Fetching chunks.
        case fetching
        /// Every chunk verified, the file in the downloads folder.
        case finished
        /// Ended without the file; `error` says why (the partial is kept for the next try).
        case failed
        /// Cancelled through the API (the partial is kept).
        case cancelled
    }

    /// The file id, in hex.
    public var id: String
    /// The file's name.
    public var name: String
    /// The file's size in bytes, once the manifest is known (zero before).
    public var size: Int64
    /// Where the download is.
    public var state: State
    /// Bytes held and verified.
    public var bytes: Int64
    /// Bytes per second over the last few seconds.
    public var bytesPerSecond: Double
    /// Peers that have sent chunks.
    public var peers: Int
    /// Seconds left at the current rate, when it can be told.
    public var etaSeconds: Double?
    /// Seconds since the download started (to its end, once it has ended).
    public var seconds: Double
    /// Why it failed.
    public var error: String?

    /// Whether the download has ended, one way or another.
    public var hasEnded: Bool {
        switch self.state {
        case .starting, .fetching: false
        case .finished, .failed, .cancelled: true
        }
    }
}
