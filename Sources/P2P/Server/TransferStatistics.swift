import NIOCore
import Synchronization

/// Counters of what a peer served and received, for `list`, logs, metrics and tests.
public final class TransferStatistics: Sendable {
    /// A snapshot of the counters.
    public struct Snapshot: Sendable, Equatable {
        /// Chunks served to others.
        public var chunksServed = 0
        /// Bytes served to others.
        public var bytesServed: Int64 = 0
        /// Bytes served, by the address they went to (the host, not the port: a peer
        /// connects from many ports). At most `maximumCountedSources` addresses are told
        /// apart; bytes to others are counted under `otherSource`.
        public var bytesServedTo: [String: Int64] = [:]
        /// Chunks downloaded that verified against their manifest.
        public var chunksVerified = 0
        /// Chunks downloaded that did not verify, and were fetched again.
        public var chunksRejected = 0
        /// Bytes of verified downloaded chunks.
        public var bytesReceived: Int64 = 0
        /// Bytes of verified downloaded chunks, by the peer that sent them (at most
        /// `maximumCountedSources` peers; the rest under `nil`).
        public var bytesReceivedFrom: [PeerID?: Int64] = [:]
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

    /// How many addresses and peers the per-source counters tell apart: ids and addresses
    /// are the other side's choice, and the counters must not grow with them.
    public static let maximumCountedSources = 256

    /// The key of bytes served to addresses past `maximumCountedSources`.
    public static let otherSource = "other"

    private let state = Mutex(Snapshot())

    /// Zeroed counters.
    public init() {}

    /// The counters now.
    public var snapshot: Snapshot { self.state.withLock { $0 } }

    func recordServed(bytes: Int, to remote: SocketAddress?) {
        let address = remote?.ipAddress ?? Self.otherSource
        self.state.withLock {
            $0.chunksServed += 1
            $0.bytesServed += Int64(bytes)
            let key =
                $0.bytesServedTo[address] != nil || $0.bytesServedTo.count < Self.maximumCountedSources
                ? address : Self.otherSource
            $0.bytesServedTo[key, default: 0] += Int64(bytes)
        }
    }

    func recordVerified(bytes: Int, from peer: PeerID) {
        self.state.withLock {
            $0.chunksVerified += 1
            $0.bytesReceived += Int64(bytes)
            let key: PeerID? =
                $0.bytesReceivedFrom[peer] != nil || $0.bytesReceivedFrom.count < Self.maximumCountedSources
                ? peer : nil
            $0.bytesReceivedFrom[key, default: 0] += Int64(bytes)
        }
    }

    func recordRejected() {
        self.state.withLock { $0.chunksRejected += 1 }
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
