import Synchronization

/// Counters of what a peer served and received, for `list`, logs and tests.
public final class TransferStatistics: Sendable {
    /// A snapshot of the counters.
    public struct Snapshot: Sendable, Equatable {
        /// Chunks served to others.
        public var chunksServed = 0
        /// Bytes served to others.
        public var bytesServed: Int64 = 0
        /// Pushed chunks kept.
        public var pushesStored = 0
        /// Pushed chunks already held.
        public var pushesDuplicate = 0
        /// Pushed chunks that did not verify.
        public var pushesCorrupt = 0
        /// Pushed chunks refused: for lack of cache space, or over the sender's allowance
        /// (`PushAllowance`).
        public var pushesRefused = 0
        /// Chunks pushed to others.
        public var chunksPushed = 0
    }

    private let state = Mutex(Snapshot())

    /// Zeroed counters.
    public init() {}

    /// The counters now.
    public var snapshot: Snapshot { self.state.withLock { $0 } }

    func recordServed(bytes: Int) {
        self.state.withLock {
            $0.chunksServed += 1
            $0.bytesServed += Int64(bytes)
        }
    }

    func recordPush(_ outcome: PushOutcome, bytes: Int) {
        self.state.withLock {
            switch outcome {
            case .stored: $0.pushesStored += 1
            case .duplicate: $0.pushesDuplicate += 1
            case .corrupt: $0.pushesCorrupt += 1
            case .cacheFull: $0.pushesRefused += 1
            }
        }
    }

    func recordPushRefused() {
        self.state.withLock { $0.pushesRefused += 1 }
    }

    func recordPushed(count: Int) {
        self.state.withLock { $0.chunksPushed += count }
    }
}
