/// When a served connection has taken too long: the policy alone, with time passed in (no
/// sockets, timers or clocks inside).
///
/// Two deadlines, because bytes are not progress: a peer can keep a connection alive by
/// sending one byte now and then, and never finish a frame.
/// - **Idle**: a connection that in `idleTimeout` neither completes a frame nor takes any
///   of the answers written to it is closed. A byte that is part of no whole frame does not
///   count; a client that is sent relayed chunks and reads them, but asks for nothing, is
///   busy, not idle.
/// - **Frame**: a frame must be whole within `frameTimeout` of its first byte, however its
///   bytes trickle in, so that no connection holds an unfinished frame (up to 16 MiB) for
///   long. Time the server itself does not read the connection (its requests wait for
///   their answers) is not the client's fault: a frame found late then gets a fresh
///   `frameTimeout` from that moment.
struct ConnectionDeadlines: Sendable {
    /// Why a connection is to be closed.
    enum Verdict: Equatable, Sendable {
        /// Not yet; look again at this time.
        case keep(until: ContinuousClock.Instant)
        /// Nothing done for `idleTimeout`.
        case idle
        /// A frame unfinished `frameTimeout` after its first byte.
        case frameTooSlow
    }

    /// How long a connection may go without progress.
    let idleTimeout: Duration
    /// How long a frame may take from its first byte to its last.
    let frameTimeout: Duration
    /// The last frame completed or answer bytes taken (or the opening).
    private(set) var lastProgress: ContinuousClock.Instant
    /// When the first byte of the unfinished frame arrived; `nil` if there is none.
    private(set) var frameStarted: ContinuousClock.Instant?

    /// Deadlines for a connection opened at `now`.
    init(idleTimeout: Duration, frameTimeout: Duration, openedAt now: ContinuousClock.Instant) {
        self.idleTimeout = idleTimeout
        self.frameTimeout = frameTimeout
        self.lastProgress = now
    }

    /// A frame arrived whole.
    mutating func frameCompleted(at now: ContinuousClock.Instant) {
        self.lastProgress = max(self.lastProgress, now)
        self.frameStarted = nil
    }

    /// After the frames of a read are taken: whether part of a frame is still held.
    mutating func bytesRead(holdingUnfinishedFrame: Bool, at now: ContinuousClock.Instant) {
        if !holdingUnfinishedFrame {
            self.frameStarted = nil
        } else if self.frameStarted == nil {
            self.frameStarted = now
        }
    }

    /// The socket took bytes of an answer: the client reads what it is sent.
    mutating func answerProgressed(at now: ContinuousClock.Instant) {
        self.lastProgress = max(self.lastProgress, now)
    }

    /// When to look again at the latest.
    var nextCheck: ContinuousClock.Instant {
        let idle = self.lastProgress + self.idleTimeout
        guard let started = self.frameStarted else { return idle }
        return min(idle, started + self.frameTimeout)
    }

    /// Whether the connection is to be closed now.
    /// - Parameters:
    ///   - now: the time.
    ///   - reading: whether the server is reading the connection; if not, an unfinished
    ///     frame is not the client's fault and its deadline starts again.
    /// - Returns: keep it (until when), or why to close it.
    mutating func check(at now: ContinuousClock.Instant, reading: Bool) -> Verdict {
        if let started = self.frameStarted, now - started >= self.frameTimeout {
            guard reading else {
                self.frameStarted = now
                return self.check(at: now, reading: reading)
            }
            return .frameTooSlow
        }
        if now - self.lastProgress >= self.idleTimeout { return .idle }
        return .keep(until: self.nextCheck)
    }
}
