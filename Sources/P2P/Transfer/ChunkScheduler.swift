/// Decides which chunk to ask which peer for (the download engine's brain, as a value).
///
/// Rarest first: of the chunks a peer holds that are neither held here nor already asked
/// for, the one the fewest peers hold, so rare chunks are fetched while their holders are
/// still around. When every missing chunk is in flight (the endgame), an idle peer may ask
/// for a chunk another peer is already sending, so that one slow peer cannot hold up the
/// end; the first copy to arrive wins.
struct ChunkScheduler {
    /// The chunks held and verified.
    private(set) var have: ChunkBitmap
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

    /// A scheduler for a file of `chunkCount` chunks, of which `have` are held.
    init(have: ChunkBitmap) {
        self.have = have
        self.availability = [Int](repeating: 0, count: have.count)
    }

    var chunkCount: Int { self.have.count }
    var isComplete: Bool { self.have.isComplete }
    var missing: [Int] { self.have.missing }

    /// Whether any held chunk is missing here: the peer is worth a connection.
    func isUseful(_ peer: PeerID) -> Bool {
        guard let holding = self.holdings[peer] else { return false }
        return holding.indices.contains { !self.have.contains($0) }
    }

    /// Records what a peer holds now.
    mutating func update(_ peer: PeerID, holding: ChunkBitmap) {
        guard holding.count == self.chunkCount else { return }
        if let old = self.holdings[peer] {
            for index in old.indices { self.availability[index] -= 1 }
        }
        for index in holding.indices { self.availability[index] += 1 }
        self.holdings[peer] = holding
    }

    /// Forgets a peer: it left or was dropped. Its requests in flight are free to go to
    /// others.
    mutating func remove(_ peer: PeerID) {
        if let old = self.holdings.removeValue(forKey: peer) {
            for index in old.indices { self.availability[index] -= 1 }
        }
        for (chunk, peers) in self.requested where peers.contains(peer) {
            self.cancel(chunk, from: peer)
        }
    }

    /// The next chunk to ask `peer` for, marked as in flight; `nil` if it has nothing
    /// useful now.
    mutating func next(for peer: PeerID) -> Int? {
        guard let holding = self.holdings[peer], !self.isComplete else { return nil }
        let count = self.chunkCount
        var best: Int? = nil
        var bestAvailability = Int.max
        for step in 0..<count {
            let index = (self.cursor + step) % count
            guard holding.contains(index), !self.have.contains(index), self.requested[index] == nil else { continue }
            if self.availability[index] < bestAvailability {
                best = index
                bestAvailability = self.availability[index]
                if bestAvailability <= 1 { break }
            }
        }
        if let best {
            self.cursor = (best + 1) % count
            self.requested[best] = [peer]
            return best
        }
        // Endgame: every chunk this peer could send is in flight elsewhere.
        var endgame: Int? = nil
        var fewest = Int.max
        for (index, peers) in self.requested where holding.contains(index) && !peers.contains(peer) {
            if peers.count < self.endgameCopies && peers.count < fewest {
                endgame = index
                fewest = peers.count
            }
        }
        if let endgame { self.requested[endgame, default: []].insert(peer) }
        return endgame
    }

    /// A verified chunk arrived.
    /// - Returns: true if it is new here (not a duplicate of an endgame copy).
    mutating func completed(_ chunk: Int, from peer: PeerID) -> Bool {
        self.requested[chunk] = nil
        return self.have.insert(chunk)
    }

    /// A request is given up: the chunk goes back to be asked of someone.
    mutating func cancel(_ chunk: Int, from peer: PeerID) {
        self.requested[chunk]?.remove(peer)
        if self.requested[chunk]?.isEmpty == true { self.requested[chunk] = nil }
    }

    /// The peer said it does not hold a chunk it claimed: it is no longer counted for it.
    mutating func lacks(_ chunk: Int, peer: PeerID) {
        self.cancel(chunk, from: peer)
        guard var holding = self.holdings[peer], holding.contains(chunk) else { return }
        var fresh = ChunkBitmap(count: holding.count)
        for index in holding.indices where index != chunk { fresh.insert(index) }
        holding = fresh
        self.update(peer, holding: holding)
    }
}
