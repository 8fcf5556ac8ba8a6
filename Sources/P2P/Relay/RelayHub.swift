import NIOCore
import Synchronization

/// Forwards the chunks a seeder hands this peer to the other peers downloading the same
/// file (SPEC §7, flash crowd): the seeder sends each chunk once, to one downloader, and
/// that downloader's upload spreads it. In a crowd that fits the partner budget it goes to
/// every other downloader; in a larger one along the relay overlay (SPEC §12,
/// `RelayMembership`): to the downloader's partners, who forward it on to theirs.
///
/// Peers that download a file send a relay request on each connection they open; the
/// server side of that connection subscribes here and writes what is forwarded back on
/// it. Each subscriber has its own queue, so one slow peer does not hold up the others,
/// and a queue that grows past `maximumQueuedBytes` drops what it cannot take (that peer
/// fetches those chunks itself after the relay grace). The longest queue of a file is its
/// forwarding backlog: a downloader asks the seeder for more work only while it is short.
///
/// Chunks handed out in pieces are forwarded piece by piece as they arrive, so a chunk's
/// forwarding starts after its first 64 KiB rather than its whole 256 KiB (SPEC §7: the
/// unit forwarded need not be the unit verified). A subscriber takes a chunk whole or not at
/// all: its first piece goes only where the queue has room for the whole chunk, and the
/// rest follows it there. The piece that completes a chunk is forwarded only once the chunk
/// has verified here; if it does not verify, or its source goes away first, the
/// subscribers that have its first pieces get an abort instead. So a subscriber never
/// completes a bad chunk from an honest relayer, and never blames one for its source.
///
/// A peer that subscribes late misses what was forwarded before it came: in a crowd that
/// starts together, the first chunks go to the first downloaders while the others are
/// still connecting. The hub keeps, for each file downloaded here, which chunks it has
/// forwarded; each new subscription carries the ones it missed, which the responder sends
/// to the subscriber (`unrelayed`) so that it fetches them at once rather than after
/// waiting to see if they come.
public final class RelayHub: Sendable {
    /// A chunk, or part of one, to forward.
    public struct Relayed: Sendable {
        /// What is forwarded.
        public enum Kind: Sendable, Equatable {
            /// A whole chunk, verified.
            case chunk
            /// The chunk's bytes from `offset` on; the piece that completes the chunk is
            /// forwarded only once the chunk has verified.
            case piece(offset: Int)
            /// The chunk whose first pieces were forwarded will not be completed.
            case abort
        }

        /// The file.
        public var file: FileID
        /// The chunk number.
        public var chunk: Int
        /// What this is.
        public var kind: Kind
        /// The bytes (none for an abort).
        public var bytes: ByteBuffer
    }

    private struct State {
        var routing: RelayRouting
        /// Each subscriber's stream.
        var streams: [UInt64: AsyncStream<Relayed>.Continuation] = [:]
        /// The wake-ups waiting for a backlog to fall, by their key in `routing`.
        var wakeups: [UInt64: Wakeup] = [:]
        var waiterKeys: [ObjectIdentifier: UInt64] = [:]
        var nextWaiterKey: UInt64 = 0
    }

    private let state: Mutex<State>
    /// The peer this hub forwards for: its rank among a file's downloaders follows from
    /// its id.
    public let me: PeerID
    /// The most bytes queued for one subscriber; more are dropped.
    public var maximumQueuedBytes: Int { self.state.withLock { $0.routing.maximumQueuedBytes } }

    /// Creates a hub.
    /// - Parameters:
    ///   - me: the id of the peer it forwards for (a fresh one for a hub on its own).
    ///   - maximumQueuedBytes: the bound on each subscriber's queue.
    public init(me: PeerID = .random(), maximumQueuedBytes: Int = 2 << 20) {
        self.me = me
        self.state = Mutex(State(routing: RelayRouting(maximumQueuedBytes: maximumQueuedBytes)))
    }

    /// A subscription: the chunks to write to one connection, until it ends.
    public struct Subscription: Sendable {
        /// The chunks, in the order they were forwarded.
        public let chunks: AsyncStream<Relayed>
        /// The chunks of the file forwarded before this subscription, which will not come
        /// on it; `nil` if the file is not being downloaded here.
        public let missed: ChunkBitmap?
        fileprivate let id: UInt64
        fileprivate let hub: RelayHub

        /// Reports that a chunk from `chunks` has been handed to the connection, so that
        /// it no longer counts as backlog.
        public func written(_ chunk: Relayed) {
            self.hub.written(chunk.bytes.readableBytes, by: self.id)
        }

        /// Ends the subscription (the connection closed).
        public func cancel() {
            self.hub.unsubscribe(self.id)
        }
    }

    /// Subscribes a connection to the chunks of `file` forwarded from now on.
    /// - Parameters:
    ///   - file: the file.
    ///   - peer: the downloader on the other end, as its relay request says: where this
    ///     peer's downloads follow the relay overlay, only partners get chunks.
    public func subscribe(to file: FileID, from peer: PeerID? = nil) -> Subscription {
        let (stream, continuation) = AsyncStream.makeStream(of: Relayed.self, bufferingPolicy: .unbounded)
        let (id, missed) = self.state.withLock { state in
            let subscribed = state.routing.subscribe(to: file, from: peer)
            state.streams[subscribed.id] = continuation
            return subscribed
        }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        return Subscription(chunks: stream, missed: missed, id: id, hub: self)
    }

    /// Starts recording which chunks of `file` are forwarded: this peer downloads it. Each
    /// call is matched by one `endDownload`.
    public func beginDownload(of file: FileID, chunkCount: Int) {
        self.state.withLock { $0.routing.beginDownload(of: file, chunkCount: chunkCount) }
    }

    /// A download of `file` here has ended; the record goes with the last one.
    public func endDownload(of file: FileID) {
        self.state.withLock { $0.routing.endDownload(of: file) }
    }

    /// Where this peer stands among the downloaders of `file`, which it downloads: from
    /// now on its chunks go to the partners the relay overlay names.
    func setMembership(_ membership: RelayMembership, of file: FileID) {
        self.state.withLock { $0.routing.setMembership(membership, of: file) }
    }

    /// Whether `chunk` of `file`, downloaded here, has been forwarded: it was verified
    /// here, and is on disk or about to be (forwarding comes before the write).
    public func hasForwarded(_ chunk: Int, of file: FileID) -> Bool {
        self.state.withLock { $0.routing.hasForwarded(chunk, of: file) }
    }

    /// Queues a verified chunk for the subscribers of its file that take it: every one, for
    /// a chunk the seeder handed out here in a full mesh; the partners the relay overlay
    /// names otherwise.
    /// - Parameters:
    ///   - bytes: the chunk.
    ///   - chunk: its number.
    ///   - file: the file.
    ///   - source: the partner it came relayed from; `nil` if the seeder handed it out here.
    /// - Returns: how many subscribers it was queued for.
    @discardableResult
    public func forward(_ bytes: ByteBuffer, chunk: Int, of file: FileID, receivedFrom source: PeerID? = nil) -> Int {
        // A whole chunk is a first piece that also completes it.
        self.queue(
            Relayed(file: file, chunk: chunk, kind: .chunk, bytes: bytes),
            offset: 0,
            chunkLength: bytes.readableBytes,
            receivedFrom: source
        )
    }

    /// Queues a piece of a chunk for every subscriber of its file that takes the chunk: the
    /// first piece goes to each subscriber whose queue has room for the whole chunk, and
    /// the later ones to the same subscribers. The piece that completes the chunk must be
    /// forwarded only once the chunk has verified; until then `abort` takes it back.
    /// - Parameters:
    ///   - bytes: the piece.
    ///   - chunk: the chunk number.
    ///   - offset: where in the chunk the piece starts.
    ///   - chunkLength: the chunk's length.
    ///   - file: the file.
    /// - Returns: how many subscribers it was queued for.
    @discardableResult
    public func forwardPiece(_ bytes: ByteBuffer, chunk: Int, offset: Int, chunkLength: Int, of file: FileID) -> Int {
        self.queue(
            Relayed(file: file, chunk: chunk, kind: .piece(offset: offset), bytes: bytes),
            offset: offset,
            chunkLength: chunkLength
        )
    }

    /// Queues `relayed` for the subscribers the routing gives it to.
    /// - Returns: how many subscribers it was queued for.
    private func queue(_ relayed: Relayed, offset: Int, chunkLength: Int, receivedFrom source: PeerID? = nil) -> Int {
        self.state.withLock { state in
            let (takers, _) = state.routing.route(
                chunk: relayed.chunk,
                of: relayed.file,
                offset: offset,
                length: relayed.bytes.readableBytes,
                chunkLength: chunkLength,
                receivedFrom: source
            )
            // A subscriber whose queue had no room is not told: it fetches the chunk itself
            // after the relay grace. Told at once, it would fetch it at once, most likely from
            // this relayer, whose uplink to it is the one backed up.
            for id in takers { state.streams[id]?.yield(relayed) }
            return takers.count
        }
    }

    /// Tells every subscriber that got the first pieces of `chunk` that it will not be
    /// completed (it did not verify here, or its source went away).
    public func abort(_ chunk: Int, of file: FileID) {
        let relayed = Relayed(file: file, chunk: chunk, kind: .abort, bytes: ByteBuffer())
        self.state.withLock { state in
            for id in state.routing.abort(chunk, of: file) { state.streams[id]?.yield(relayed) }
        }
    }

    /// The most bytes queued for all subscribers at once so far. A chunk queued for several
    /// subscribers counts once per subscriber, though they share its bytes.
    public var peakQueuedBytes: Int { self.state.withLock { $0.routing.peakQueuedBytes } }

    /// How many peers are subscribed to `file` here.
    public func subscriberCount(of file: FileID) -> Int {
        self.state.withLock { $0.routing.subscriberCount(of: file) }
    }

    /// The forwarding backlog of `file`: the most bytes queued for any one subscriber and
    /// not yet on their way. The longest queue, not the sum: each subscriber's connection
    /// gets only its share of the uplink, so a queue that grows at one peer is what makes
    /// the last chunks late there.
    public func backlog(of file: FileID) -> Int {
        self.state.withLock { $0.routing.backlog(of: file) }
    }

    /// Arranges for `wakeup` to be signalled once the backlog of `file` is below `limit`.
    /// - Returns: false, arranging nothing, if it is below already.
    func signalWhenBacklog(of file: FileID, isBelow limit: Int, _ wakeup: Wakeup) -> Bool {
        self.state.withLock { state in
            let identity = ObjectIdentifier(wakeup)
            let key: UInt64
            if let known = state.waiterKeys[identity] {
                key = known
            } else {
                state.nextWaiterKey += 1
                key = state.nextWaiterKey
            }
            guard state.routing.wait(key, untilBacklogOf: file, isBelow: limit) else { return false }
            state.waiterKeys[identity] = key
            state.wakeups[key] = wakeup
            return true
        }
    }

    private func written(_ bytes: Int, by id: UInt64) {
        let ready = self.state.withLock { state in
            Self.take(state.routing.written(bytes, by: id), from: &state)
        }
        for wakeup in ready { wakeup.signal() }
    }

    private func unsubscribe(_ id: UInt64) {
        let (stream, ready) = self.state.withLock { state -> (AsyncStream<Relayed>.Continuation?, [Wakeup]) in
            let (wasSubscribed, released) = state.routing.unsubscribe(id)
            guard wasSubscribed else { return (nil, []) }
            return (state.streams.removeValue(forKey: id), Self.take(released, from: &state))
        }
        // Outside the lock: finishing calls `onTermination`, which comes back here.
        stream?.finish()
        for wakeup in ready { wakeup.signal() }
    }

    /// The wake-ups of the released waiters, forgotten here.
    private static func take(_ keys: [UInt64], from state: inout State) -> [Wakeup] {
        keys.compactMap { key in
            guard let wakeup = state.wakeups.removeValue(forKey: key) else { return nil }
            state.waiterKeys[ObjectIdentifier(wakeup)] = nil
            return wakeup
        }
    }
}
