/// Where a relayer's forwarded chunks go, as a value: which subscribers take a chunk (a
/// first piece only where the whole chunk fits the queue, the rest to those that took the
/// first), each subscriber's backlog, the tasks waiting for a backlog to fall, and which
/// chunks of a file downloaded here have been forwarded. Subscribers and waiters are
/// numbers; `RelayHub` holds this in a `Mutex` and owns the streams and wake-ups they
/// stand for.
package struct RelayRouting {
    private struct Subscriber {
        var file: FileID
        /// The downloader it is, as its relay request says; `nil` if it did not say.
        var peer: PeerID?
        var queuedBytes = 0
        /// Chunks whose first pieces were queued here and whose last is still to come: the
        /// rest of each follows, whatever the queue's length, so that a chunk is taken whole
        /// or not at all.
        var piecesOpen: Set<Int> = []
    }

    /// What the routing knows of one file downloaded here.
    private struct Record {
        /// Downloads of the file running here (the library allows more than one).
        var downloads: Int
        var chunks: ChunkBitmap
        /// Where this peer stands among the file's downloaders; `nil` until the download
        /// says: then every subscriber takes what the seeder hands out here, and nothing
        /// relayed goes further.
        var membership: RelayMembership? = nil
        /// The partner each chunk forwarded onward came from (absent: the seeder handed
        /// it out here).
        var sources: [Int: PeerID] = [:]
    }

    private struct Waiter {
        var key: UInt64
        var file: FileID
        var below: Int
    }

    /// The most bytes queued for one subscriber; a chunk that would go over is not queued.
    package let maximumQueuedBytes: Int
    private var nextSubscriber: UInt64 = 0
    private var subscribers: [UInt64: Subscriber] = [:]
    private var waiters: [Waiter] = []
    private var forwarded: [FileID: Record] = [:]
    /// Bytes queued for all subscribers now, and the most there have been: what forwarding
    /// holds in memory.
    package private(set) var queuedBytes = 0
    package private(set) var peakQueuedBytes = 0

    package init(maximumQueuedBytes: Int) {
        self.maximumQueuedBytes = maximumQueuedBytes
    }

    // MARK: Subscribers

    /// A new subscriber to `file`.
    /// - Parameters:
    ///   - file: the file.
    ///   - peer: the downloader subscribing, if it said.
    /// - Returns: its number, and the chunks of the file forwarded before it that it would
    ///   have been given (which it will not get now), or `nil` if the file is not being
    ///   downloaded here.
    package mutating func subscribe(to file: FileID, from peer: PeerID? = nil) -> (id: UInt64, missed: ChunkBitmap?) {
        self.nextSubscriber += 1
        self.subscribers[self.nextSubscriber] = Subscriber(file: file, peer: peer)
        guard let record = self.forwarded[file] else { return (self.nextSubscriber, nil) }
        guard let membership = record.membership else { return (self.nextSubscriber, record.chunks) }
        var missed = ChunkBitmap(count: record.chunks.count)
        for chunk in record.chunks.indices
        where Self.takes(peer, membership.onward(receivedFrom: record.sources[chunk])) {
            missed.insert(chunk)
        }
        return (self.nextSubscriber, missed)
    }

    /// Whether a subscriber that is `peer` is among `onward` (`nil`: everyone).
    private static func takes(_ peer: PeerID?, _ onward: Set<PeerID>?) -> Bool {
        guard let onward else { return true }
        return peer.map(onward.contains) ?? false
    }

    /// A subscriber's connection ended.
    /// - Returns: whether it was subscribed, and the waiters its going released.
    package mutating func unsubscribe(_ id: UInt64) -> (wasSubscribed: Bool, released: [UInt64]) {
        guard let subscriber = self.subscribers.removeValue(forKey: id) else { return (false, []) }
        self.queuedBytes -= subscriber.queuedBytes
        return (true, self.releaseWaiters(for: subscriber.file))
    }

    /// Bytes queued for subscriber `id` are on their way.
    /// - Returns: the waiters released.
    package mutating func written(_ bytes: Int, by id: UInt64) -> [UInt64] {
        guard var subscriber = self.subscribers[id] else { return [] }
        subscriber.queuedBytes -= bytes
        self.queuedBytes -= bytes
        self.subscribers[id] = subscriber
        return self.releaseWaiters(for: subscriber.file)
    }

    /// How many subscribers `file` has.
    package func subscriberCount(of file: FileID) -> Int {
        self.subscribers.values.count { $0.file == file }
    }

    /// The forwarding backlog of `file`: the most bytes queued for any one subscriber.
    package func backlog(of file: FileID) -> Int {
        self.subscribers.values.reduce(0) { $1.file == file ? max($0, $1.queuedBytes) : $0 }
    }

    /// The bytes queued for all subscribers of `file`: how long this peer's uplink is
    /// booked with forwarding.
    package func totalBacklog(of file: FileID) -> Int {
        self.subscribers.values.reduce(0) { $1.file == file ? $0 + $1.queuedBytes : $0 }
    }

    // MARK: Downloads here

    /// This peer starts downloading `file`: forwarded chunks are recorded from now on.
    package mutating func beginDownload(of file: FileID, chunkCount: Int) {
        if var record = self.forwarded[file], record.chunks.count == chunkCount {
            record.downloads += 1
            self.forwarded[file] = record
        } else {
            self.forwarded[file] = Record(downloads: 1, chunks: ChunkBitmap(count: chunkCount))
        }
    }

    /// A download of `file` here ended; the record goes with the last one.
    package mutating func endDownload(of file: FileID) {
        guard var record = self.forwarded[file] else { return }
        record.downloads -= 1
        self.forwarded[file] = record.downloads > 0 ? record : nil
    }

    /// Where this peer stands among the downloaders of `file`, downloaded here: from now on
    /// chunks go to the subscribers the overlay names.
    package mutating func setMembership(_ membership: RelayMembership, of file: FileID) {
        self.forwarded[file]?.membership = membership
    }

    /// Where this peer stands among the downloaders of `file`, if the download said.
    package func membership(of file: FileID) -> RelayMembership? {
        self.forwarded[file]?.membership
    }

    /// Whether `chunk` of `file`, downloaded here, has been forwarded.
    package func hasForwarded(_ chunk: Int, of file: FileID) -> Bool {
        self.forwarded[file]?.chunks.contains(chunk) ?? false
    }

    // MARK: Forwarding

    /// `length` bytes of `chunk` starting at `offset` are forwarded: at offset 0 to each
    /// subscriber of `file` with room for the whole chunk, later to those that took the
    /// chunk's first piece.
    /// With the file's membership known, only the subscribers the overlay sends the chunk
    /// on to take it.
    /// - Parameters:
    ///   - source: the partner the chunk came relayed from; `nil` if the seeder handed it
    ///     out here.
    ///   - eligible: which subscribers may take the chunk at all (the simulator's own
    ///     overlay); all of them by default.
    /// - Returns: the subscribers to deliver it to, and at a first piece the subscribers the
    ///   chunk was for that had no room for it and named themselves (`dropped`): the ones a
    ///   notice that it will not come could go to (the simulator's `--drop-notices`; the
    ///   hub sends none).
    package mutating func route(
        chunk: Int,
        of file: FileID,
        offset: Int,
        length: Int,
        chunkLength: Int,
        receivedFrom source: PeerID? = nil,
        eligible: (UInt64) -> Bool = { _ in true }
    ) -> (takers: [UInt64], dropped: [UInt64]) {
        let completes = offset + length >= chunkLength
        let onward: Set<PeerID>?
        if let membership = self.forwarded[file]?.membership {
            onward = membership.onward(receivedFrom: source)
        } else {
            // Without a membership only what the seeder hands out is forwarded.
            onward = source == nil ? nil : []
        }
        if offset == 0, onward?.isEmpty != true {
            self.forwarded[file]?.chunks.insert(chunk)
            self.forwarded[file]?.sources[chunk] = source
        }
        var takers: [UInt64] = []
        var dropped: [UInt64] = []
        // The overlay picks who takes a chunk's first piece; the rest follow it there even
        // if the membership changed in between.
        for (id, var subscriber) in self.subscribers
        where subscriber.file == file && eligible(id) && (offset > 0 || Self.takes(subscriber.peer, onward)) {
            if offset == 0 {
                guard subscriber.queuedBytes + chunkLength <= self.maximumQueuedBytes else {
                    // A subscriber that did not name itself may not expect a notice here.
                    if subscriber.peer != nil { dropped.append(id) }
                    continue
                }
                if !completes { subscriber.piecesOpen.insert(chunk) }
            } else {
                guard subscriber.piecesOpen.contains(chunk) else { continue }
                if completes { subscriber.piecesOpen.remove(chunk) }
            }
            subscriber.queuedBytes += length
            self.subscribers[id] = subscriber
            takers.append(id)
        }
        self.queuedBytes += length * takers.count
        self.peakQueuedBytes = max(self.peakQueuedBytes, self.queuedBytes)
        return (takers, dropped)
    }

    /// `chunk` will not be completed.
    /// - Returns: the subscribers that took its first pieces, to be told.
    package mutating func abort(_ chunk: Int, of file: FileID) -> [UInt64] {
        var told: [UInt64] = []
        for (id, var subscriber) in self.subscribers
        where subscriber.file == file && subscriber.piecesOpen.contains(chunk) {
            subscriber.piecesOpen.remove(chunk)
            self.subscribers[id] = subscriber
            told.append(id)
        }
        return told
    }

    // MARK: Waiting for the backlog

    /// Waiter `key` wants to know when the backlog of `file` is below `limit`.
    /// - Returns: false, recording nothing, if it is below already.
    package mutating func wait(_ key: UInt64, untilBacklogOf file: FileID, isBelow limit: Int) -> Bool {
        guard self.backlog(of: file) >= limit else { return false }
        if !self.waiters.contains(where: { $0.key == key }) {
            self.waiters.append(Waiter(key: key, file: file, below: limit))
        }
        return true
    }

    private mutating func releaseWaiters(for file: FileID) -> [UInt64] {
        guard !self.waiters.isEmpty else { return [] }
        let backlog = self.backlog(of: file)
        var released: [UInt64] = []
        self.waiters.removeAll { waiter in
            guard waiter.file == file, backlog < waiter.below else { return false }
            released.append(waiter.key)
            return true
        }
        return released
    }
}
