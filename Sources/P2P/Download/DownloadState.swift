/// How a chunk came.
package enum ChunkArrival: String, Sendable {
    /// Asked for by number.
    case pulled
    /// Forwarded by another downloader.
    case relayed
    /// Handed out by a seeder, to forward.
    case assigned
}

/// The decisions of one download that are not the scheduler's, as a value: who works on
/// it, when a peer whose worker ended may get a new one, which verified chunk is written
/// by whom, what counts as finished, and what each peer sent. Every event is a `mutating`
/// method with the time passed in; what the drivers must do next comes back as a `Wake`.
/// `DownloadRun` holds it in a `Mutex` and wakes the workers it says.
package struct DownloadState {
    /// Whom an event may have given something to do.
    package enum Wake: Equatable, Sendable {
        /// Nobody.
        case nobody
        /// The loop that starts workers: a worker ended.
        case starter
        /// Every worker and the starter: the download changed in a way that may give a
        /// worker something to ask for, or it is finished.
        case everyone
    }

    /// Which chunk to ask whom for.
    package private(set) var scheduler: ChunkScheduler
    /// Bytes each peer sent that were verified (duplicates included).
    package private(set) var bytesFromPeer: [PeerID: Int64] = [:]
    /// Bytes held and verified.
    package private(set) var bytesHeld: Int64
    /// Peers with a worker now.
    package private(set) var workers: Set<PeerID> = []
    /// Peers dropped for bad chunks: never asked again in this download.
    package private(set) var dropped: Set<PeerID> = []
    /// Peers tried, with their addresses, for the message of a download that ends short.
    package private(set) var tried: [PeerID: String] = [:]
    /// New chunks by how they came, for the log.
    package private(set) var arrivals: [ChunkArrival: Int] = [:]
    /// An error that ends the whole download, such as a full disk.
    package private(set) var failure: (any Error)? = nil
    package private(set) var timedOut = false
    private var badChunks: [PeerID: Int] = [:]
    /// Chunks claimed by a worker that is writing them, so a duplicate is not written twice.
    private var writing: Set<Int> = []
    /// When a peer whose worker ended may get a new one.
    private var retryAfter: [PeerID: ContinuousClock.Instant] = [:]
    /// The pause before the next retry of each peer.
    private var backoff: [PeerID: Duration] = [:]
    /// Where this peer stands among the file's downloaders: whom it works with and relays
    /// to. `nil` until the swarm is first seen: then every peer may have a worker.
    package private(set) var membership: RelayMembership? = nil
    /// This peer's partners in the relay overlay.
    private var partners: Set<PeerID> = []
    /// Peers heard holding part of the file (possibly none of it): other downloaders.
    private var downloading: Set<PeerID> = []
    /// The chunks a relayer said it will not forward here, and which relayer: fetched
    /// instead, each goes on from here as if it had come relayed from that relayer, since
    /// the partners the overlay reaches through this peer expect it from here.
    private var owedRelays: [Int: PeerID] = [:]
    /// Peers whose first word of the file was that they hold all of it: seeders, never
    /// counted among the downloaders, even if they go on to hold less (a restart).
    private var seeders: Set<PeerID> = []
    /// Peers whose holdings have been heard.
    private var heard: Set<PeerID> = []
    /// The relay grace for one hop (seconds); a chunk's path through the overlay takes up
    /// to one hop per digit, and the scheduler's grace is this times the digits.
    private let relayGracePerHop: Double

    /// The first pause before a peer whose worker ended gets a new one; it doubles each
    /// time, up to `longestRetryPause`, so an unreachable peer or one without the file is
    /// not asked in a tight loop.
    package static let firstRetryPause: Duration = .milliseconds(500)
    /// The longest pause between a peer's workers.
    package static let longestRetryPause: Duration = .seconds(8)

    /// The state of a download of `manifest` that holds `have` already.
    package init(manifest: Manifest, have: ChunkBitmap, relayGrace: Duration) {
        var scheduler = ChunkScheduler(have: have)
        scheduler.relaying = true
        scheduler.relayGrace = relayGrace.seconds
        self.scheduler = scheduler
        self.relayGracePerHop = relayGrace.seconds
        self.bytesHeld = have.indices.reduce(Int64(0)) { $0 + Int64(manifest.length(ofChunk: $1)) }
    }

    package var isComplete: Bool { self.scheduler.isComplete }

    /// Whether the download is over: complete, timed out or failed.
    package var isFinished: Bool { self.scheduler.isComplete || self.timedOut || self.failure != nil }

    /// Peers that have sent chunks so far.
    package var activePeers: Int { self.bytesFromPeer.values.count { $0 > 0 } }

    // MARK: Workers

    /// The peers in the swarm now (this peer's view): the downloaders among them, with
    /// this one and every downloader seen before in this download, form the relay
    /// overlay. A peer once counted stays counted: a view that shrank whenever a peer's
    /// announcements went missing for a while would move every downloader's partners
    /// (and ranks must agree across downloaders); a downloader that really left leaves a
    /// hole, whose chunks come from holders after the relay grace.
    /// - Returns: the membership, if it changed.
    package mutating func see(
        _ peers: some Sequence<PeerID>,
        me: PeerID,
        maximumPartners: Int
    ) -> RelayMembership? {
        var downloaders = Set(self.membership?.members ?? [])
        downloaders.formUnion(peers)
        downloaders.subtract(self.seeders)
        return self.adopt(RelayMembership(me: me, downloaders: downloaders, maximumPartners: maximumPartners))
    }

    /// Takes `membership` as this peer's view (`see` derives it from the peers heard; a
    /// simulated crowd derives it once for everyone and gives each downloader its own
    /// place in it).
    /// - Returns: the membership, if it changed.
    package mutating func adopt(_ membership: RelayMembership) -> RelayMembership? {
        guard membership != self.membership else { return nil }
        self.membership = membership
        self.partners = membership.partners
        // A chunk handed to a downloader that is not a partner comes through one or more
        // partners in between, each with a queue of its own to wait in.
        self.scheduler.relayGrace = self.relayGracePerHop * Double(membership.overlay.dimensions)
        return membership
    }

    /// Whether this peer works with `peer` in the relay overlay: every peer until the
    /// swarm is seen and in a full mesh; otherwise its partners and the seeders. While no
    /// peer is known to hold the whole file, also any peer not heard from yet, which may be
    /// the seeder (a seeder busy with a crowd can answer a lookup too late to be counted).
    package func worksWith(_ peer: PeerID) -> Bool {
        guard let membership = self.membership, !membership.worksWith(peer) else { return true }
        if self.seeders.contains(peer) || self.scheduler.holdsAll(peer) { return true }
        // Without a complete holder, chunks only others' partial copies hold are pulled
        // from whoever holds them, partner or not.
        return !self.scheduler.knowsCompleteHolder
    }

    /// Whether other downloaders will subscribe to what this peer is handed: a partner is
    /// heard downloading the file. Peers that serve other things count in the overlay's
    /// view but never subscribe, so a partner alone is not enough.
    package var hasRelayPartners: Bool { !self.partners.isDisjoint(with: self.downloading) }

    /// Whether `peer` may have a worker now; records it as working if so.
    package mutating func claimWorker(_ peer: PeerID, now: ContinuousClock.Instant) -> Bool {
        guard !self.dropped.contains(peer), !self.workers.contains(peer), self.worksWith(peer) else { return false }
        if let retry = self.retryAfter[peer], now < retry { return false }
        self.workers.insert(peer)
        return true
    }

    /// A worker ended without finishing the download.
    package mutating func releaseWorker(_ peer: PeerID, now: ContinuousClock.Instant) -> Wake {
        self.workers.remove(peer)
        let pause = min(self.backoff[peer].map { $0 * 2 } ?? Self.firstRetryPause, Self.longestRetryPause)
        self.backoff[peer] = pause
        self.retryAfter[peer] = now + pause
        return .starter
    }

    /// A worker connected to `peer` at `address`.
    package mutating func markTried(_ peer: PeerID, at address: String) {
        self.tried[peer] = address
    }

    /// A peer's worker ended for good, or the peer is gone: its requests go back to the
    /// scheduler; one that sent bad chunks is never asked again.
    package mutating func remove(_ peer: PeerID, dropped: Bool) -> Wake {
        self.scheduler.remove(peer)
        if dropped { self.dropped.insert(peer) }
        return .everyone
    }

    // MARK: What peers hold

    /// A peer's holdings, from its inventory.
    /// - Parameter listsFile: whether the peer's inventory lists the file at all (a peer
    ///   that does not is serving other things, and holds none of it).
    package mutating func update(_ peer: PeerID, holding: ChunkBitmap, now: Double, listsFile: Bool = true) -> Wake {
        if holding.count == self.scheduler.chunkCount {
            if self.heard.insert(peer).inserted && holding.isComplete { self.seeders.insert(peer) }
            if listsFile && !holding.isComplete {
                self.downloading.insert(peer)
            } else {
                self.downloading.remove(peer)
            }
        }
        self.scheduler.update(peer, holding: holding, now: now)
        return .everyone
    }

    /// A relayer's notice of chunks it will not forward.
    package mutating func unrelayed(_ chunks: ChunkBitmap, by peer: PeerID, now: Double) -> Wake {
        self.scheduler.unrelayed(chunks, by: peer, now: now)
        chunks.forEachIndex { chunk in
            if !self.scheduler.have.contains(chunk) && !self.writing.contains(chunk) { self.owedRelays[chunk] = peer }
        }
        return .everyone
    }

    /// The seeder has no more work: chunks still missing are asked of holders.
    /// - Returns: the chunks still missing, while there was a seeder handing out work.
    package mutating func workExhausted(now: Double) -> (missing: Int?, wake: Wake) {
        guard self.scheduler.workSource != nil else { return (nil, .everyone) }
        self.scheduler.workExhausted(now: now)
        return (self.scheduler.chunkCount - self.scheduler.have.setCount, .everyone)
    }

    // MARK: Requests

    /// The next chunk to ask `peer` for.
    package mutating func next(for peer: PeerID, now: Double) -> Int? {
        self.scheduler.next(for: peer, now: now)
    }

    /// A request for `chunk` from `peer` will not be answered with data.
    package mutating func cancel(_ chunk: Int, from peer: PeerID) -> Wake {
        self.scheduler.cancel(chunk, from: peer)
        return .everyone
    }

    /// `peer` said it does not hold `chunk`.
    package mutating func lacks(_ chunk: Int, peer: PeerID) -> Wake {
        self.scheduler.lacks(chunk, peer: peer)
        return .everyone
    }

    // MARK: Verified chunks

    /// Claims a verified chunk for writing; false if it is held or being written already.
    package mutating func claimChunk(_ chunk: Int, from peer: PeerID) -> Bool {
        guard !self.scheduler.have.contains(chunk), !self.writing.contains(chunk) else {
            self.scheduler.cancel(chunk, from: peer)
            return false
        }
        self.writing.insert(chunk)
        return true
    }

    /// The relayer whose forward of `chunk` this peer stands in for, if a relayer said it
    /// will not forward it: a claimed chunk that came any other way goes on as if relayed
    /// from it.
    package func relayOwed(_ chunk: Int) -> PeerID? {
        self.owedRelays[chunk]
    }

    /// A claimed chunk could not be written.
    package mutating func unclaim(_ chunk: Int, from peer: PeerID) {
        self.writing.remove(chunk)
        self.scheduler.cancel(chunk, from: peer)
    }

    /// A claimed chunk is written: it is held from now on.
    package mutating func completed(_ chunk: Int, bytes: Int, from peer: PeerID, as arrival: ChunkArrival) -> Wake {
        self.writing.remove(chunk)
        self.owedRelays[chunk] = nil
        if self.scheduler.completed(chunk, from: peer) {
            self.bytesHeld += Int64(bytes)
            self.arrivals[arrival, default: 0] += 1
        }
        self.bytesFromPeer[peer, default: 0] += Int64(bytes)
        return self.scheduler.isComplete ? .everyone : .nobody
    }

    /// A chunk from `peer` failed verification.
    /// - Returns: how many bad chunks the peer has sent.
    package mutating func recordBadChunk(from peer: PeerID) -> Int {
        self.badChunks[peer, default: 0] += 1
        return self.badChunks[peer]!
    }

    // MARK: The end

    /// The deadline passed.
    package mutating func timeOut() -> Wake {
        self.timedOut = true
        return .everyone
    }

    /// An error that ends the whole download; the first one is kept.
    package mutating func abort(_ error: any Error) -> Wake {
        if self.failure == nil { self.failure = error }
        return .everyone
    }

    /// The error for a download that ended without every chunk: which are missing, and
    /// which peers were tried.
    package func incompleteError(_ manifest: Manifest, keptAt path: String) -> P2PError {
        let missing = self.scheduler.missing
        let tried = self.tried.sorted { $0.key < $1.key }.map { "\($0.key.short) at \($0.value)" }
        let triedText = tried.isEmpty ? "no peer had it" : "tried \(tried.joined(separator: ", "))"
        return P2PError(
            code: .timedOut,
            "\(manifest.name): \(missing.count) of \(manifest.chunkCount) chunks missing "
                + "(\(ChunkBitmap.ranges(missing))); \(triedText); "
                + "kept \(path), the next download resumes from it"
        )
    }
}
