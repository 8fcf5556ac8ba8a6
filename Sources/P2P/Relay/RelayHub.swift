import NIOCore
import Synchronization

/// Forwards the chunks a seeder hands this peer to every other peer downloading the same
/// file (SPEC §7, flash crowd): the seeder sends each chunk once, to one downloader, and
/// that downloader's upload spreads it.
///
/// Peers that download a file send a relay request on each connection they open; the
/// server side of that connection subscribes here and writes what is forwarded back on
/// it. Each subscriber has its own queue, so one slow peer does not hold up the others,
/// and a queue that grows past `maximumQueuedBytes` drops what it cannot take (that peer
/// fetches those chunks itself later). The longest queue of a file is its forwarding
/// backlog: a downloader asks the seeder for more work only while it is short.
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

    private struct Subscriber {
        var file: FileID
        var continuation: AsyncStream<Relayed>.Continuation
        var queuedBytes = 0
        /// Chunks whose first pieces were queued here and whose last is still to come: the
        /// rest of each follows, whatever the queue's length, so that a chunk is taken whole
        /// or not at all.
        var piecesOpen: Set<Int> = []
    }

    private struct State {
        var nextID: UInt64 = 0
        var subscribers: [UInt64: Subscriber] = [:]
        /// Tasks waiting for a file's backlog to fall, with the level they wait for.
        var backlogWaiters: [(file: FileID, below: Int, wakeup: Wakeup)] = []
        /// The files downloaded here, with the chunks forwarded so far.
        var forwarded: [FileID: Record] = [:]
    }

    /// What the hub knows of one file downloaded here.
    private struct Record {
        /// Downloads of the file running here (the library allows more than one).
        var downloads: Int
        var chunks: ChunkBitmap
    }

    private let state = Mutex(State())
    /// The most bytes queued for one subscriber; more are dropped.
    public let maximumQueuedBytes: Int

    /// Creates a hub.
    /// - Parameter maximumQueuedBytes: the bound on each subscriber's queue.
    public init(maximumQueuedBytes: Int = 2 << 20) {
        self.maximumQueuedBytes = maximumQueuedBytes
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
    public func subscribe(to file: FileID) -> Subscription {
        let (stream, continuation) = AsyncStream.makeStream(of: Relayed.self, bufferingPolicy: .unbounded)
        let (id, missed) = self.state.withLock { state in
            state.nextID += 1
            state.subscribers[state.nextID] = Subscriber(file: file, continuation: continuation)
            return (state.nextID, state.forwarded[file]?.chunks)
        }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        return Subscription(chunks: stream, missed: missed, id: id, hub: self)
    }

    /// Starts recording which chunks of `file` are forwarded: this peer downloads it. Each
    /// call is matched by one `endDownload`.
    public func beginDownload(of file: FileID, chunkCount: Int) {
        self.state.withLock { state in
            if var record = state.forwarded[file], record.chunks.count == chunkCount {
                record.downloads += 1
                state.forwarded[file] = record
            } else {
                state.forwarded[file] = Record(downloads: 1, chunks: ChunkBitmap(count: chunkCount))
            }
        }
    }

    /// A download of `file` here has ended; the record goes with the last one.
    public func endDownload(of file: FileID) {
        self.state.withLock { state in
            guard var record = state.forwarded[file] else { return }
            record.downloads -= 1
            state.forwarded[file] = record.downloads > 0 ? record : nil
        }
    }

    /// Whether `chunk` of `file`, downloaded here, has been forwarded: it was verified
    /// here, and is on disk or about to be (forwarding comes before the write).
    public func hasForwarded(_ chunk: Int, of file: FileID) -> Bool {
        self.state.withLock { state in state.forwarded[file]?.chunks.contains(chunk) ?? false }
    }

    /// Queues a verified chunk for every subscriber of its file.
    /// - Returns: how many subscribers it was queued for.
    @discardableResult
    public func forward(_ bytes: ByteBuffer, chunk: Int, of file: FileID) -> Int {
        // A whole chunk is a first piece that also completes it.
        self.queue(
            Relayed(file: file, chunk: chunk, kind: .chunk, bytes: bytes),
            offset: 0,
            chunkLength: bytes.readableBytes
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

    /// Queues `relayed`, which starts at `offset` in its chunk, for the subscribers that
    /// take it: at offset 0, those with room for the whole chunk; later, those that took
    /// the chunk's first piece.
    /// - Returns: how many subscribers it was queued for.
    private func queue(_ relayed: Relayed, offset: Int, chunkLength: Int) -> Int {
        let (file, chunk, bytes) = (relayed.file, relayed.chunk, relayed.bytes)
        let completes = offset + bytes.readableBytes >= chunkLength
        return self.state.withLock { state in
            if offset == 0 { state.forwarded[file]?.chunks.insert(chunk) }
            var count = 0
            for (id, var subscriber) in state.subscribers where subscriber.file == file {
                if offset == 0 {
                    guard subscriber.queuedBytes + chunkLength <= self.maximumQueuedBytes else { continue }
                    if !completes { subscriber.piecesOpen.insert(chunk) }
                } else {
                    guard subscriber.piecesOpen.contains(chunk) else { continue }
                    if completes { subscriber.piecesOpen.remove(chunk) }
                }
                subscriber.queuedBytes += bytes.readableBytes
                state.subscribers[id] = subscriber
                subscriber.continuation.yield(relayed)
                count += 1
            }
            return count
        }
    }

    /// Tells every subscriber that got the first pieces of `chunk` that it will not be
    /// completed (it did not verify here, or its source went away).
    public func abort(_ chunk: Int, of file: FileID) {
        let relayed = Relayed(file: file, chunk: chunk, kind: .abort, bytes: ByteBuffer())
        self.state.withLock { state in
            for (id, var subscriber) in state.subscribers
            where subscriber.file == file && subscriber.piecesOpen.contains(chunk) {
                subscriber.piecesOpen.remove(chunk)
                state.subscribers[id] = subscriber
                subscriber.continuation.yield(relayed)
            }
        }
    }

    /// How many peers are subscribed to `file` here.
    public func subscriberCount(of file: FileID) -> Int {
        self.state.withLock { state in state.subscribers.values.count { $0.file == file } }
    }

    /// The forwarding backlog of `file`: the most bytes queued for any one subscriber and
    /// not yet on their way. The longest queue, not the sum: each subscriber's connection
    /// gets only its share of the uplink, so a queue that grows at one peer is what makes
    /// the last chunks late there.
    public func backlog(of file: FileID) -> Int {
        self.state.withLock { state in Self.backlog(of: file, in: state) }
    }

    /// Arranges for `wakeup` to be signalled once the backlog of `file` is below `limit`.
    /// - Returns: false, arranging nothing, if it is below already.
    func signalWhenBacklog(of file: FileID, isBelow limit: Int, _ wakeup: Wakeup) -> Bool {
        self.state.withLock { state in
            guard Self.backlog(of: file, in: state) >= limit else { return false }
            if !state.backlogWaiters.contains(where: { $0.wakeup === wakeup }) {
                state.backlogWaiters.append((file, limit, wakeup))
            }
            return true
        }
    }

    private static func backlog(of file: FileID, in state: State) -> Int {
        state.subscribers.values.reduce(0) { $1.file == file ? max($0, $1.queuedBytes) : $0 }
    }

    private func written(_ bytes: Int, by id: UInt64) {
        let ready = self.state.withLock { state -> [Wakeup] in
            guard var subscriber = state.subscribers[id] else { return [] }
            subscriber.queuedBytes -= bytes
            state.subscribers[id] = subscriber
            return self.releaseWaiters(for: subscriber.file, in: &state)
        }
        for wakeup in ready { wakeup.signal() }
    }

    private func unsubscribe(_ id: UInt64) {
        let (removed, ready) = self.state.withLock { state -> (Subscriber?, [Wakeup]) in
            guard let subscriber = state.subscribers.removeValue(forKey: id) else { return (nil, []) }
            return (subscriber, self.releaseWaiters(for: subscriber.file, in: &state))
        }
        // Outside the lock: finishing calls `onTermination`, which comes back here.
        removed?.continuation.finish()
        for wakeup in ready { wakeup.signal() }
    }

    private func releaseWaiters(for file: FileID, in state: inout State) -> [Wakeup] {
        guard !state.backlogWaiters.isEmpty else { return [] }
        let backlog = Self.backlog(of: file, in: state)
        var ready: [Wakeup] = []
        state.backlogWaiters.removeAll { waiter in
            guard waiter.file == file, backlog < waiter.below else { return false }
            ready.append(waiter.wakeup)
            return true
        }
        return ready
    }
}
