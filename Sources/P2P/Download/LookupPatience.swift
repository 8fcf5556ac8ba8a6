/// How long a download looks for its file and its manifest, and how often it asks again:
/// a value with the time passed in.
///
/// A download with a deadline (`get --timeout`) looks until the deadline, not for a fixed
/// few seconds: on a busy network the one peer that holds the file may be heard late (its
/// announcements queue behind data on a full uplink) or answer slowly, and giving up while
/// it is up fails a download that would have worked (SPEC §12). Without a deadline the
/// look lasts `defaultPatience`, so that a name nobody offers is reported promptly.
///
/// The waits start short, because a peer that has just started hears the swarm within
/// milliseconds, and grow to `longestWait`, so that a long look costs the swarm a few
/// inventory requests a second, not dozens, when everyone is busy. A peer joining wakes
/// the look at once whatever the wait (the driver's business).
struct LookupPatience: Sendable {
    /// How long a look without a deadline lasts.
    static let defaultPatience: Duration = .seconds(5)
    /// The first waits, while the swarm's answers to this peer's `start` come in.
    static let shortWait: Duration = .milliseconds(50)
    /// How many short waits come first: about one second of them.
    static let shortWaits = 20
    /// The longest wait between two looks.
    static let longestWait: Duration = .seconds(1)

    /// When the look gives up.
    let giveUp: ContinuousClock.Instant
    /// The looks that failed so far.
    private(set) var failures = 0

    /// Starts a look.
    /// - Parameters:
    ///   - started: when it starts.
    ///   - deadline: the download's deadline, if any: the look lasts until then.
    ///   - patience: without a deadline, how long the look lasts.
    init(
        started: ContinuousClock.Instant,
        deadline: ContinuousClock.Instant?,
        patience: Duration = LookupPatience.defaultPatience
    ) {
        self.giveUp = deadline ?? started + patience
    }

    /// A look failed: how long to wait before the next one, or `nil` to give up.
    /// - Parameter now: the time now.
    /// - Returns: the wait, never past `giveUp`; `nil` once `giveUp` has come.
    mutating func failed(now: ContinuousClock.Instant) -> Duration? {
        guard now < self.giveUp else { return nil }
        let wait: Duration
        if self.failures < Self.shortWaits {
            wait = Self.shortWait
        } else {
            // 100 ms, 200 ms, 400 ms, 800 ms, then the longest wait.
            let doublings = min(self.failures - Self.shortWaits, 4)
            wait = min(Self.longestWait, .milliseconds(100) * (1 << doublings))
        }
        self.failures += 1
        return min(wait, self.giveUp - now)
    }
}
