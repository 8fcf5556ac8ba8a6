import Synchronization

/// One download's shared state, for the tasks that drive it: a `DownloadState` in a
/// `Mutex`, the clock it reads, and the wake-ups of the workers and of the loop that
/// starts them. The decisions are the state's; this type only feeds it events with the
/// time and wakes whom it says.
final class DownloadRun: Sendable {
    let manifest: Manifest
    let file: ChunkFile

    private let state: Mutex<DownloadState>
    /// The workers' wake-ups, signalled when the download changes in a way that may give
    /// them something to ask for.
    private let workerWakeups = Mutex<[ObjectIdentifier: Wakeup]>([:])
    private let started = ContinuousClock.now
    /// Wakes the loop that starts workers: a worker ended, or the download finished.
    let mainWakeup = Wakeup()

    init(manifest: Manifest, file: ChunkFile, have: ChunkBitmap, relayGrace: Duration = .milliseconds(1500)) {
        self.manifest = manifest
        self.file = file
        self.state = Mutex(DownloadState(manifest: manifest, have: have, relayGrace: relayGrace))
    }

    /// Seconds since the download began: the scheduler's clock.
    private var now: Double { (ContinuousClock.now - self.started).seconds }

    func register(_ wakeup: Wakeup) {
        self.workerWakeups.withLock { $0[ObjectIdentifier(wakeup)] = wakeup }
    }

    func unregister(_ wakeup: Wakeup) {
        self.workerWakeups.withLock { $0[ObjectIdentifier(wakeup)] = nil }
    }

    /// Wakes whom an event says.
    private func wake(_ wake: DownloadState.Wake) {
        switch wake {
        case .nobody:
            return
        case .starter:
            self.mainWakeup.signal()
        case .everyone:
            let wakeups = self.workerWakeups.withLock { Array($0.values) }
            for wakeup in wakeups { wakeup.signal() }
            self.mainWakeup.signal()
        }
    }

    /// Runs one event on the state and wakes whom it says.
    private func event(_ body: (inout DownloadState) -> DownloadState.Wake) {
        self.wake(self.state.withLock { body(&$0) })
    }

    // MARK: Reading

    /// Whether `peer` is the seeder to ask for work rather than chunks.
    func isWorkSource(_ peer: PeerID) -> Bool { self.state.withLock { $0.scheduler.workSource == peer } }

    /// Whether `peer` holds the whole file.
    func holdsAll(_ peer: PeerID) -> Bool { self.state.withLock { $0.scheduler.holdsAll(peer) } }

    /// The held chunks' bitmap bytes for a work request; empty if none are held.
    var heldBitmapBytes: [UInt8] {
        self.state.withLock { $0.scheduler.have.setCount == 0 ? [] : $0.scheduler.have.bytes }
    }

    var isComplete: Bool { self.state.withLock { $0.isComplete } }
    var isFinished: Bool { self.state.withLock { $0.isFinished } }
    var failure: (any Error)? { self.state.withLock { $0.failure } }
    var bytesHeld: Int64 { self.state.withLock { $0.bytesHeld } }
    var bytesFromPeer: [PeerID: Int64] { self.state.withLock { $0.bytesFromPeer } }
    var activePeers: Int { self.state.withLock { $0.activePeers } }
    var workerCount: Int { self.state.withLock { $0.workers.count } }
    /// New chunks by how they came, for the log.
    var arrivals: [ChunkArrival: Int] { self.state.withLock { $0.arrivals } }

    // MARK: Events

    /// The seeder has no more work: chunks still missing are asked of holders.
    /// - Returns: the chunks still missing, while there was a seeder handing out work.
    @discardableResult
    func workExhausted() -> Int? {
        let now = self.now
        let (missing, wake) = self.state.withLock { $0.workExhausted(now: now) }
        self.wake(wake)
        return missing
    }

    func abort(_ error: any Error) { self.event { $0.abort(error) } }

    func unclaim(_ chunk: Int, from peer: PeerID) { self.state.withLock { $0.unclaim(chunk, from: peer) } }

    func timeOut() { self.event { $0.timeOut() } }

    func claimWorker(_ peer: PeerID) -> Bool { self.state.withLock { $0.claimWorker(peer, now: .now) } }

    /// The peers in the swarm now; the relay overlay over its downloaders, if it changed
    /// (the workers are woken to see whether they still have a partner).
    func see(_ peers: [PeerID], me: PeerID, maximumPartners: Int) -> RelayMembership? {
        let changed = self.state.withLock { $0.see(peers, me: me, maximumPartners: maximumPartners) }
        if changed != nil { self.wake(.everyone) }
        return changed
    }

    /// Whether this peer works with `peer` in the relay overlay.
    func worksWith(_ peer: PeerID) -> Bool { self.state.withLock { $0.worksWith(peer) } }

    /// Whether other downloaders will subscribe to what this peer is handed.
    var hasRelayPartners: Bool { self.state.withLock { $0.hasRelayPartners } }

    func releaseWorker(_ peer: PeerID) { self.event { $0.releaseWorker(peer, now: .now) } }

    func markTried(_ peer: KnownPeer) {
        self.state.withLock { $0.markTried(peer.id, at: peer.transferAddressDescription) }
    }

    func update(_ peer: PeerID, holding: ChunkBitmap, listsFile: Bool = true) {
        let now = self.now
        self.event { $0.update(peer, holding: holding, now: now, listsFile: listsFile) }
    }

    func unrelayed(_ chunks: ChunkBitmap, by peer: PeerID) {
        let now = self.now
        self.event { $0.unrelayed(chunks, by: peer, now: now) }
    }

    func next(for peer: PeerID) -> Int? {
        let now = self.now
        return self.state.withLock { $0.next(for: peer, now: now) }
    }

    func cancel(_ chunk: Int, from peer: PeerID) { self.event { $0.cancel(chunk, from: peer) } }

    func cancelAll(_ chunks: [Int], from peer: PeerID) {
        guard !chunks.isEmpty else { return }
        self.event { state in
            for chunk in chunks { _ = state.cancel(chunk, from: peer) }
            return .everyone
        }
    }

    func lacks(_ chunk: Int, peer: PeerID) { self.event { $0.lacks(chunk, peer: peer) } }

    /// Claims a verified chunk for writing; false if it is held or being written already.
    func claimChunk(_ chunk: Int, from peer: PeerID) -> Bool {
        self.state.withLock { $0.claimChunk(chunk, from: peer) }
    }

    func relayOwed(_ chunk: Int) -> PeerID? {
        self.state.withLock { $0.relayOwed(chunk) }
    }

    func completed(_ chunk: Int, bytes: Int, from peer: PeerID, as arrival: ChunkArrival) {
        self.event { $0.completed(chunk, bytes: bytes, from: peer, as: arrival) }
    }

    func recordBadChunk(from peer: PeerID) -> Int { self.state.withLock { $0.recordBadChunk(from: peer) } }

    func remove(_ peer: PeerID, dropped: Bool) { self.event { $0.remove(peer, dropped: dropped) } }

    /// The error for a download that ended without every chunk.
    func incompleteError() -> P2PError {
        let path = "\(self.file.dataPath)"
        return self.state.withLock { $0.incompleteError(self.manifest, keptAt: path) }
    }
}
