/// Decides which chunk to ask which peer for (the download engine's brain, as a value).
///
/// Rarest first: of the chunks a peer holds that are neither held here nor already asked
/// for, the one the fewest peers hold, so rare chunks are fetched while their holders are
/// still around. When every missing chunk is in flight (the endgame), an idle peer may ask
/// for a chunk another peer is already sending, so that one slow peer cannot hold up the
/// end; the first copy to arrive wins. While relaying, the endgame starts only once the
/// seeder has handed out everything.
///
/// With `relaying` on, a file that exactly one peer holds whole is spread the flash-crowd
/// way (SPEC §7): that seeder is asked for work, not for chunks (`workSource`), and the
/// chunks other downloaders hold are mostly on their way here already, forwarded as they
/// got them. So a chunk is asked of anyone only once it has been seen at a downloader for
/// `relayGrace` without arriving, or, for chunks only the seeder holds, once the seeder has
/// handed out everything and `relayGrace` has passed: what was lost on the way (a peer
/// that left, a forward dropped) is fetched then. With no other downloader known, there is
/// nothing to wait for: chunks only the seeder holds are asked of it as soon as it has no
/// work left. Nor for chunks a relayer says it was handed before this peer subscribed to it
/// (`unrelayed`): they will not come forwarded, so they may be asked for at once.
package struct ChunkScheduler {
    /// The chunks held and verified.
    package private(set) var have: ChunkBitmap
    /// How many peers hold each chunk.
    private var availability: [Int]
    /// What each peer holds, as last heard.
    private var holdings: [PeerID: ChunkBitmap] = [:]
    /// Who has been asked for each chunk in flight.
    private var requested: [Int: Set<PeerID>] = [:]
    /// Where the last scan started, so that equally rare chunks are spread over peers.
    private var cursor = 0
    /// The most peers asked for one chunk in the endgame.
    private let endgameCopies = 2
    /// Whether a single seeder's chunks are expected to be relayed (see above).
    package var relaying = false
    /// How long (seconds) a chunk seen at a downloader may take to arrive forwarded.
    package var relayGrace = 1.5
    /// Peers holding every chunk.
    private var completeHolders: Set<PeerID> = []
    /// Peers holding some chunks but not all: other downloaders, the only ones that relay.
    private var partialHolders: Set<PeerID> = []
    /// When (seconds into the download) each chunk was first seen at a peer that does not
    /// hold the whole file; infinity if never; minus infinity if it will not come forwarded
    /// (ask now).
    private var firstSeen: [Double]
    /// When the work source said it had handed out every chunk.
    private var workExhaustedAt: Double? = nil
    /// While a seeder hands out work: for each peer found with nothing to ask for, the
    /// time before which that stays so unless an event changes what peers hold or what is
    /// in flight (each such event clears it). In a crowd most of what partners hold is on
    /// its way here relayed, and this spares a scan on every answer.
    private var idleUntil: [PeerID: Double] = [:]

    /// A scheduler for a file of `chunkCount` chunks, of which `have` are held.
    package init(have: ChunkBitmap) {
        self.have = have
        self.availability = [Int](repeating: 0, count: have.count)
        self.firstSeen = [Double](repeating: .infinity, count: have.count)
    }

    /// The seeder to ask for work instead of chunks: while relaying, the one peer that
    /// holds the whole file, until it has no more work.
    package var workSource: PeerID? {
        guard self.isRelayingNow, self.workExhaustedAt == nil else { return nil }
        return self.completeHolders.first
    }

    private var isRelayingNow: Bool { self.relaying && self.completeHolders.count == 1 }

    /// The work source has handed out every chunk.
    package mutating func workExhausted(now: Double) {
        self.idleUntil.removeAll(keepingCapacity: true)
        if self.workExhaustedAt == nil { self.workExhaustedAt = now }
    }

    /// Whether chunk `index` may be asked for now (always, unless relaying).
    package func mayRequest(_ index: Int, now: Double) -> Bool {
        guard self.isRelayingNow else { return true }
        if self.firstSeen[index] < .infinity { return now >= self.firstSeen[index] + self.relayGrace }
        guard let exhausted = self.workExhaustedAt else { return false }
        // With no other downloader in sight, nothing is on its way here: the chunks the
        // seeder handed out went to peers that are gone (say, the last download of the
        // same file, a moment ago), so waiting for their relay would only be lost time.
        return self.partialHolders.isEmpty || now >= exhausted + self.relayGrace
    }

    /// When chunk `index`, held back while relaying, may be asked for: once it has been
    /// seen at a downloader for `relayGrace`; never, for now, if it has not been seen.
    private func releaseTime(of index: Int) -> Double {
        self.firstSeen[index] < .infinity ? self.firstSeen[index] + self.relayGrace : .infinity
    }

    /// Whether `peer` holds every chunk, as last heard.
    package func holdsAll(_ peer: PeerID) -> Bool { self.completeHolders.contains(peer) }

    /// Whether any peer is known to hold every chunk.
    package var knowsCompleteHolder: Bool { !self.completeHolders.isEmpty }

    package var chunkCount: Int { self.have.count }
    package var isComplete: Bool { self.have.isComplete }
    package var missing: [Int] { self.have.missing }

    /// Whether any held chunk is missing here: the peer is worth a connection.
    package func isUseful(_ peer: PeerID) -> Bool {
        guard let holding = self.holdings[peer] else { return false }
        return zip(holding.bytes, self.have.bytes).contains { held, had in held & ~had != 0 }
    }

    /// Records what a peer holds now.
    /// - Parameters:
    ///   - peer: the peer.
    ///   - holding: its chunks.
    ///   - now: seconds into the download.
    package mutating func update(_ peer: PeerID, holding: ChunkBitmap, now: Double = 0) {
        self.idleUntil.removeAll(keepingCapacity: true)
        guard holding.count == self.chunkCount else { return }
        if holding.isComplete {
            self.completeHolders.insert(peer)
            self.partialHolders.remove(peer)
        } else {
            self.completeHolders.remove(peer)
            if holding.setCount > 0 { self.partialHolders.insert(peer) } else { self.partialHolders.remove(peer) }
            holding.forEachIndex { index in
                if self.firstSeen[index] == .infinity { self.firstSeen[index] = now }
            }
        }
        if let old = self.holdings[peer] {
            old.forEachIndex { self.availability[$0] -= 1 }
        }
        holding.forEachIndex { self.availability[$0] += 1 }
        self.holdings[peer] = holding
    }

    /// A relayer says it was handed `chunks` before this peer asked it to relay, so they
    /// will not come forwarded: they may be asked for at once (of it or of anyone holding
    /// them), with no grace. That is what matters here. The relayer has verified them, so
    /// they are also counted as its holdings until its next inventory says otherwise. Its
    /// write of the last ones may still be under way; a request that comes first waits for
    /// it there (up to 100 ms, `SwarmResponder.forwardedWriteWait`).
    package mutating func unrelayed(_ chunks: ChunkBitmap, by peer: PeerID, now: Double = 0) {
        guard chunks.count == self.chunkCount else { return }
        var holding = self.holdings[peer] ?? ChunkBitmap(count: self.chunkCount)
        chunks.forEachIndex { index in
            self.firstSeen[index] = -.infinity
            holding.insert(index)
        }
        self.update(peer, holding: holding, now: now)
    }

    /// Forgets a peer: it left or was dropped. Its requests in flight are free to go to
    /// others.
    package mutating func remove(_ peer: PeerID) {
        self.idleUntil.removeAll(keepingCapacity: true)
        self.completeHolders.remove(peer)
        self.partialHolders.remove(peer)
        if let old = self.holdings.removeValue(forKey: peer) {
            old.forEachIndex { self.availability[$0] -= 1 }
        }
        for (chunk, peers) in self.requested where peers.contains(peer) {
            self.cancel(chunk, from: peer)
        }
    }

    /// The next chunk to ask `peer` for, marked as in flight; `nil` if it has nothing
    /// useful now.
    /// - Parameters:
    ///   - peer: the peer to ask.
    ///   - now: seconds into the download.
    package mutating func next(for peer: PeerID, now: Double = 0) -> Int? {
        guard let holding = self.holdings[peer], !self.isComplete else { return nil }
        if let until = self.idleUntil[peer], now < until { return nil }
        let count = self.chunkCount
        // The earliest time a chunk the peer holds may be asked for, of those held back.
        var earliest = Double.infinity
        var best: Int? = nil
        var bestAvailability = Int.max
        // No chunk is rarer than this: every peer that holds the whole file holds it, and
        // `peer` holds it. A chunk this rare ends the scan. Without it, a file that several
        // seeders hold (every chunk equally common) would be scanned to the end on every call,
        // with a dictionary lookup per chunk: quadratic in the chunk count.
        let rarestPossible = max(1, self.completeHolders.count)
        // Scanned a byte of the bitmaps at a time, from the cursor round to it again: a
        // byte with no chunk the peer holds and this one lacks costs one test, so a call
        // costs the candidates, not the chunk count (a crowd calls this on every answer).
        let holdingBytes = holding.bytes
        let haveBytes = self.have.bytes
        let byteCount = holdingBytes.count
        let startByte = self.cursor >> 3
        let startBit = UInt8(self.cursor & 7)
        scan: for byteStep in 0...byteCount {
            var byte = startByte + byteStep
            if byte >= byteCount { byte -= byteCount }
            var mask = holdingBytes[byte] & ~haveBytes[byte]
            if byteStep == 0 {
                mask &= 0xFF >> startBit
            } else if byteStep == byteCount {
                mask &= ~(0xFF >> startBit)
            }
            while mask != 0 {
                let bit = mask.leadingZeroBitCount
                mask &= ~(0x80 >> UInt8(bit))
                let index = byte << 3 + bit
                // The cheap tests first; the lookup of requests last.
                guard index < count, self.availability[index] < bestAvailability else { continue }
                guard self.mayRequest(index, now: now) else {
                    earliest = min(earliest, self.releaseTime(of: index))
                    continue
                }
                guard self.requested[index] == nil else { continue }
                best = index
                bestAvailability = self.availability[index]
                if bestAvailability <= rarestPossible { break scan }
            }
        }
        if let best {
            self.cursor = (best + 1) % count
            self.requested[best] = [peer]
            return best
        }
        // Endgame: every chunk this peer could send is in flight elsewhere. Not while a
        // seeder still hands out work: most missing chunks are then still to come,
        // relayed, and the few that may be asked for (a first downloader's chunks, handed
        // out before anyone subscribed to its relays) would each be fetched twice, by
        // every downloader at once.
        guard !self.isRelayingNow || self.workExhaustedAt != nil else {
            self.idleUntil[peer] = earliest
            return nil
        }
        var endgame: Int? = nil
        var fewest = Int.max
        // Ties go to the lowest chunk number, so that the choice depends on the requests
        // alone, not on the dictionary's order (the simulator replays runs exactly).
        for (index, peers) in self.requested where holding.contains(index) && !peers.contains(peer) {
            if peers.count < self.endgameCopies
                && (peers.count < fewest || (peers.count == fewest && index < endgame ?? Int.max))
            {
                endgame = index
                fewest = peers.count
            }
        }
        if let endgame { self.requested[endgame, default: []].insert(peer) }
        return endgame
    }

    /// A verified chunk arrived.
    /// - Returns: true if it is new here (not a duplicate of an endgame copy).
    package mutating func completed(_ chunk: Int, from peer: PeerID) -> Bool {
        self.requested[chunk] = nil
        return self.have.insert(chunk)
    }

    /// A request is given up: the chunk goes back to be asked of someone.
    package mutating func cancel(_ chunk: Int, from peer: PeerID) {
        self.idleUntil.removeAll(keepingCapacity: true)
        self.requested[chunk]?.remove(peer)
        if self.requested[chunk]?.isEmpty == true { self.requested[chunk] = nil }
    }

    /// The peer said it does not hold a chunk it claimed: it is no longer counted for it.
    package mutating func lacks(_ chunk: Int, peer: PeerID) {
        self.cancel(chunk, from: peer)
        guard var holding = self.holdings[peer], holding.remove(chunk) else { return }
        self.update(peer, holding: holding)
    }
}
