import NIOCore

/// When discovery speaks, chosen so that a large swarm's discovery stays quiet (SPEC §12):
/// a value with the randomness passed in.
///
/// - A `start` goes out at once and again after 250 ms (in case the first is lost), then,
///   while no peer has been heard at all, instead of each `alive`, up to
///   `maximumStartRepeats` more times: a newcomer whose first datagrams are lost on a busy
///   link learns the swarm from the answers to a later one rather than waiting for the
///   others' own announcements, which a saturated link drops as well.
/// - Each `alive` goes out after a random 80 to 100 % of the interval, so that peers started
///   together drift apart instead of announcing in bursts, and never later than the interval
///   the others expire this peer by.
/// - Answers to a `start` are spread over a random delay within a window that grows with
///   the swarm this peer knows (`answerWindow`): a newcomer to 1,000 peers then takes
///   their answers over half a second, which its socket's receive buffer holds, instead of
///   all at once, which it would mostly drop.
public struct AnnounceSchedule: Sendable {
    /// What to send, and when.
    public struct Step: Sendable, Equatable {
        /// How long to wait before sending.
        public var delay: TimeAmount
        /// What to send.
        public var kind: Announcement.Kind

        /// Creates a step.
        /// - Parameters:
        ///   - delay: how long to wait before sending.
        ///   - kind: what to send.
        public init(delay: TimeAmount, kind: Announcement.Kind) {
            self.delay = delay
            self.kind = kind
        }
    }

    /// The announce interval.
    public let interval: TimeAmount
    /// How many more `start`s go out, in place of `alive`s, while no peer has been heard.
    public static let maximumStartRepeats = 8
    /// The share of the interval an `alive` waits at least.
    public static let jitterFloor = 0.8
    /// The window answers to a `start` are spread over, per peer known.
    public static let answerWindowPerPeer = TimeAmount.microseconds(500)
    /// The narrowest answer window: a small swarm answers almost at once.
    public static let shortestAnswerWindow = TimeAmount.milliseconds(20)
    /// The widest answer window, so that a newcomer to any swarm knows it within a second.
    public static let longestAnswerWindow = TimeAmount.milliseconds(500)

    /// `start`s sent so far.
    public private(set) var startsSent = 0

    /// A schedule for a peer that has sent nothing yet.
    /// - Parameter interval: the announce interval.
    public init(interval: TimeAmount) {
        self.interval = interval
    }

    /// The next announcement.
    /// - Parameters:
    ///   - heardAnyone: whether any peer is in the table now.
    ///   - generator: where the jitter comes from.
    /// - Returns: how long to wait, and what to send then.
    public mutating func next(heardAnyone: Bool, using generator: inout some RandomNumberGenerator) -> Step {
        switch self.startsSent {
        case 0:
            self.startsSent = 1
            return Step(delay: .zero, kind: .start)
        case 1:
            self.startsSent = 2
            return Step(delay: min(.milliseconds(250), self.interval), kind: .start)
        default:
            let fraction = Double.random(in: Self.jitterFloor...1, using: &generator)
            let delay = TimeAmount.nanoseconds(Int64(Double(self.interval.nanoseconds) * fraction))
            guard !heardAnyone, self.startsSent < 2 + Self.maximumStartRepeats else {
                return Step(delay: delay, kind: .alive)
            }
            self.startsSent += 1
            return Step(delay: delay, kind: .start)
        }
    }

    /// The window answers to a `start` are spread over, given how many peers this one knows
    /// (about as many will answer).
    /// - Parameter knownPeers: the peers in the table.
    /// - Returns: half a millisecond per peer, within `shortestAnswerWindow` and
    ///   `longestAnswerWindow`.
    public static func answerWindow(knownPeers: Int) -> TimeAmount {
        let window = Self.answerWindowPerPeer * Int64(max(0, min(knownPeers, 1_000_000)))
        return min(Self.longestAnswerWindow, max(Self.shortestAnswerWindow, window))
    }

    /// How long to wait before answering a `start`: a random point of the answer window.
    /// - Parameters:
    ///   - knownPeers: the peers in the table.
    ///   - generator: where the delay comes from.
    /// - Returns: the delay.
    public static func answerDelay(knownPeers: Int, using generator: inout some RandomNumberGenerator) -> TimeAmount {
        let window = Self.answerWindow(knownPeers: knownPeers).nanoseconds
        return .nanoseconds(Int64.random(in: 0...window, using: &generator))
    }
}
