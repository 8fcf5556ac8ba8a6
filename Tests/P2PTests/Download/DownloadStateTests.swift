import Testing

@testable import P2P

/// The download's own decisions, driven as a value with the time passed in: no sockets,
/// no tasks, no clocks.
@Suite("DownloadState")
struct DownloadStateTests {
    let seeder = PeerID(high: 0, low: 1)
    let other = PeerID(high: 0, low: 2)
    let third = PeerID(high: 0, low: 3)
    static let chunk = 256 * 1024

    func manifest(chunks: Int) throws -> Manifest {
        try Manifest(
            name: FileName("state.bin"),
            size: UInt64(chunks * Self.chunk),
            chunkSize: Self.chunk,
            chunkHashes: [UInt8](repeating: 0, count: 32 * chunks)
        )
    }

    /// A download of `chunks` chunks with nothing held yet, as a crowd's downloader starts
    /// one; with `seederHeard`, the lookup heard `seeder` hold all of it.
    func crowdDownload(chunks: Int, seederHeard: Bool) throws -> DownloadState {
        var state = DownloadState(
            manifest: try self.manifest(chunks: chunks),
            have: ChunkBitmap(count: chunks),
            relayGrace: .seconds(1)
        )
        if seederHeard { _ = state.update(self.seeder, holding: .full(count: chunks), now: 0) }
        return state
    }

    /// A download of `chunks` chunks that three peers hold whole: with more than one full
    /// holder there is no lone seeder to ask for work, so chunks are asked for by number.
    func state(chunks: Int = 4, have: [Int] = []) throws -> DownloadState {
        var held = ChunkBitmap(count: chunks)
        for index in have { held.insert(index) }
        var state = DownloadState(manifest: try self.manifest(chunks: chunks), have: held, relayGrace: .seconds(1))
        _ = state.update(self.seeder, holding: .full(count: chunks), now: 0)
        _ = state.update(self.other, holding: .full(count: chunks), now: 0)
        _ = state.update(self.third, holding: .full(count: chunks), now: 0)
        return state
    }

    @Test("a peer that leaves with chunks in flight costs only those: another peer is given them")
    func peerLeavesWithChunksInFlight() throws {
        var state = try self.state(chunks: 2)
        let chunk = state.next(for: self.seeder, now: 0)
        let first = try #require(chunk)
        let chunkAgain = state.next(for: self.seeder, now: 0)
        let second = try #require(chunkAgain)
        #expect(Set([first, second]) == [0, 1])
        #expect(state.remove(self.seeder, dropped: false) == .everyone)
        var given: Set<Int> = []
        while let chunk = state.next(for: self.other, now: 0) { given.insert(chunk) }
        #expect(given == [0, 1])
    }

    @Test("a chunk a relayer will not forward is owed by it until it completes: fetched, it goes on as if relayed")
    func unrelayedChunksAreOwed() throws {
        var state = try self.crowdDownload(chunks: 8, seederHeard: true)
        var notice = ChunkBitmap(count: 8)
        notice.insert(2)
        notice.insert(5)
        _ = state.unrelayed(notice, by: self.other, now: 1)
        #expect(state.relayOwed(2) == self.other && state.relayOwed(5) == self.other)
        #expect(state.relayOwed(3) == nil)
        let claimed = state.claimChunk(2, from: self.third)
        #expect(claimed)
        _ = state.completed(2, bytes: Self.chunk, from: self.third, as: .pulled)
        #expect(state.relayOwed(2) == nil)
        // A chunk held already is owed by nobody.
        var again = ChunkBitmap(count: 8)
        again.insert(2)
        _ = state.unrelayed(again, by: self.third, now: 2)
        #expect(state.relayOwed(2) == nil)
    }

    @Test("a peer that sends bad chunks three times is dropped and never gets a worker again")
    func badChunksDropAPeer() throws {
        var state = try self.state()
        let start = ContinuousClock.now
        let gotWorker = state.claimWorker(self.seeder, now: start)
        #expect(gotWorker)
        for expected in 1...3 { #expect(state.recordBadChunk(from: self.seeder) == expected) }
        _ = state.remove(self.seeder, dropped: true)
        _ = state.releaseWorker(self.seeder, now: start)
        let gotWorkerAgain = state.claimWorker(self.seeder, now: start + .seconds(3600))
        #expect(!gotWorkerAgain)
        let gotWorkerThird = state.claimWorker(self.other, now: start)
        #expect(gotWorkerThird)
    }

    @Test("a peer whose worker ends waits half a second, then twice as long each time, up to eight")
    func workerBackoff() throws {
        var state = try self.state()
        var now = ContinuousClock.now
        var pauses: [Duration] = []
        for _ in 0..<6 {
            let gotWorker = state.claimWorker(self.seeder, now: now)
            #expect(gotWorker)
            let wake = state.releaseWorker(self.seeder, now: now)
            #expect(wake == .starter)
            let gotWorkerAgain = state.claimWorker(self.seeder, now: now)
            #expect(!gotWorkerAgain)
            var waited = Duration.zero
            while !state.claimWorker(self.seeder, now: now + waited) { waited += .milliseconds(250) }
            _ = state.releaseWorker(self.seeder, now: now + waited)
            pauses.append(waited)
            now = now + waited + .seconds(60)
            // The claim above made a worker; end it so the next round starts idle.
            _ = state.claimWorker(self.seeder, now: now)
            _ = state.releaseWorker(self.seeder, now: now - .seconds(60))
        }
        #expect(pauses.first == .milliseconds(500))
        #expect(pauses.allSatisfy { $0 <= .seconds(8) })
        #expect(zip(pauses, pauses.dropFirst()).allSatisfy { $0 <= $1 })
    }

    @Test("a verified chunk is written by one worker only; the last one finishes the download")
    func chunksAreWrittenOnce() throws {
        var state = try self.state(chunks: 2)
        let claimed = state.claimChunk(0, from: self.seeder)
        #expect(claimed)
        let claimedAgain = state.claimChunk(0, from: self.other)
        #expect(!claimedAgain)
        let wake = state.completed(0, bytes: Self.chunk, from: self.seeder, as: .pulled)
        #expect(wake == .nobody)
        let claimedThird = state.claimChunk(0, from: self.other)
        #expect(!claimedThird)
        #expect(!state.isFinished)
        let claimedFourth = state.claimChunk(1, from: self.other)
        #expect(claimedFourth)
        let wakeAgain = state.completed(1, bytes: Self.chunk, from: self.other, as: .relayed)
        #expect(wakeAgain == .everyone)
        #expect(state.isComplete && state.isFinished)
        #expect(state.bytesHeld == Int64(2 * Self.chunk))
        #expect(state.arrivals == [.pulled: 1, .relayed: 1])
        #expect(state.activePeers == 2)
    }

    @Test("a chunk whose write failed can be claimed and written again")
    func failedWriteIsUnclaimed() throws {
        var state = try self.state(chunks: 1)
        let claimed = state.claimChunk(0, from: self.seeder)
        #expect(claimed)
        state.unclaim(0, from: self.seeder)
        let claimedAgain = state.claimChunk(0, from: self.other)
        #expect(claimedAgain)
    }

    @Test("resumed from a record: what is held counts, and is never asked for")
    func resumeFromRecord() throws {
        var state = try self.state(chunks: 4, have: [0, 2])
        #expect(state.bytesHeld == Int64(2 * Self.chunk))
        var asked: Set<Int> = []
        while let chunk = state.next(for: self.seeder, now: 0) { asked.insert(chunk) }
        #expect(asked == [1, 3])
    }

    @Test("a timeout finishes the download; the error names the missing chunks and the peers tried")
    func timeoutNamesWhatIsMissing() throws {
        var state = try self.state(chunks: 4, have: [1])
        state.markTried(self.seeder, at: "127.0.0.1:47475")
        let wake = state.timeOut()
        #expect(wake == .everyone)
        #expect(state.isFinished && !state.isComplete)
        let error = state.incompleteError(try self.manifest(chunks: 4), keptAt: "downloads/.p2p-partials/x.partial")
        #expect(error.code == .timedOut)
        #expect(error.message.contains("3 of 4 chunks missing (0, 2-3)"))
        #expect(error.message.contains("tried \(self.seeder.short) at 127.0.0.1:47475"))
        #expect(error.message.contains("x.partial"))
    }

    @Test("the first failure that ends the download is the one kept")
    func firstFailureKept() throws {
        var state = try self.state()
        _ = state.abort(P2PError(code: .storage, "disk full"))
        _ = state.abort(P2PError(code: .storage, "later"))
        #expect((state.failure as? P2PError)?.message == "disk full")
        #expect(state.isFinished)
    }

    @Test("work handed out by a lone seeder: its end is said once, with the chunks still missing")
    func workExhaustedOnce() throws {
        let manifest = try self.manifest(chunks: 3)
        var state = DownloadState(manifest: manifest, have: ChunkBitmap(count: 3), relayGrace: .seconds(1))
        _ = state.update(self.seeder, holding: .full(count: 3), now: 0)
        #expect(state.scheduler.workSource == self.seeder)
        let claimed = state.claimChunk(0, from: self.seeder)
        #expect(claimed)
        _ = state.completed(0, bytes: Self.chunk, from: self.seeder, as: .assigned)
        let exhausted = state.workExhausted(now: 1)
        #expect(exhausted.missing == 2)
        #expect(state.scheduler.workSource == nil)
        let exhaustedAgain = state.workExhausted(now: 2)
        #expect(exhaustedAgain.missing == nil)
    }

    @Test("in a crowd past the partner budget a downloader works with its partners and the seeder, no one else")
    func overlayChoosesWorkers() throws {
        let chunks = 8
        var state = try self.crowdDownload(chunks: chunks, seederHeard: false)
        let crowd = RelayMembershipTests.peers(30)
        let me = crowd[0]
        _ = state.update(self.seeder, holding: .full(count: chunks), now: 0)
        // Before the swarm is seen, anyone may have a worker.
        #expect(state.worksWith(crowd[5]))
        let seen = state.see(crowd + [self.seeder], me: me, maximumPartners: 8)
        let membership = try #require(seen)
        #expect(!membership.isMember(self.seeder), "the seeder is not a downloader")
        #expect(membership.members.count == 30)
        let again = state.see(crowd + [self.seeder], me: me, maximumPartners: 8)
        #expect(again == nil, "an unchanged view is no news")
        let seederClaimed = state.claimWorker(self.seeder, now: .now)
        #expect(seederClaimed)
        for peer in crowd where peer != me {
            let claimed = state.claimWorker(peer, now: .now)
            #expect(claimed == membership.partners.contains(peer))
        }
        // A downloader that finishes stays a downloader: its first word was a partial file.
        let partner = membership.partners.sorted()[0]
        _ = state.update(partner, holding: ChunkBitmap(count: chunks), now: 0)
        _ = state.update(partner, holding: .full(count: chunks), now: 1)
        let afterFinish = state.see(crowd + [self.seeder], me: me, maximumPartners: 8)
        #expect(afterFinish == nil)
        // A peer missing from the table for a while (lost announcements) keeps its rank.
        let shrunk = state.see(Array(crowd.prefix(10)) + [self.seeder], me: me, maximumPartners: 8)
        #expect(shrunk == nil, "the view never shrinks within a download")
        // A crowd within the budget is a full mesh; it becomes an overlay as it grows.
        var growing = try self.crowdDownload(chunks: chunks, seederHeard: true)
        let fewer = growing.see(Array(crowd.prefix(5)) + [self.seeder], me: me, maximumPartners: 8)
        let few = try #require(fewer)
        #expect(few.isFullMesh && crowd.prefix(5).dropFirst().allSatisfy(growing.worksWith))
        let more = growing.see(crowd + [self.seeder], me: me, maximumPartners: 8)
        let grown = try #require(more)
        #expect(!grown.isFullMesh && grown.members.count == 30)
    }

    @Test("with no peer known to hold the whole file, any peer not heard from yet may be the seeder")
    func unheardPeersMayBeTheSeeder() throws {
        let chunks = 8
        var state = try self.crowdDownload(chunks: chunks, seederHeard: false)
        let crowd = RelayMembershipTests.peers(30)
        let me = crowd[0]
        // The lookup heard two other downloaders, not the seeder.
        _ = state.update(crowd[1], holding: ChunkBitmap(count: chunks), now: 0)
        _ = state.update(crowd[2], holding: ChunkBitmap(count: chunks), now: 0)
        let seen = state.see(crowd + [self.seeder], me: me, maximumPartners: 8)
        let membership = try #require(seen)
        #expect(membership.isMember(self.seeder), "not known as a seeder yet: counted")
        let stranger = try #require(crowd.dropFirst(3).first { !membership.partners.contains($0) })
        #expect(state.worksWith(stranger) && state.worksWith(self.seeder), "without a seeder, everyone may be asked")
        // Its inventory says it holds everything: a seeder, out of the overlay, and the
        // others not heard from are no longer asked.
        _ = state.update(self.seeder, holding: .full(count: chunks), now: 1)
        let corrected = state.see(crowd + [self.seeder], me: me, maximumPartners: 8)
        let fixed = try #require(corrected)
        #expect(!fixed.isMember(self.seeder) && fixed.members.count == 30)
        #expect(state.worksWith(self.seeder))
        let nonPartner = try #require(crowd.dropFirst().first { !fixed.partners.contains($0) })
        #expect(!state.worksWith(nonPartner), "with the seeder known, only partners and seeders")
    }

    @Test("a seeder first heard after the view was made is worked with before the view is made again")
    func lateSeederKeepsItsWorker() throws {
        let chunks = 8
        var state = try self.crowdDownload(chunks: chunks, seederHeard: false)
        let crowd = RelayMembershipTests.peers(30)
        let me = crowd[0]
        let seen = state.see(crowd, me: me, maximumPartners: 8)
        let membership = try #require(seen)
        // One of the peers counted as downloaders, not a partner, turns out to be the seeder.
        let seeder = try #require(crowd.dropFirst().first { !membership.partners.contains($0) })
        _ = state.update(seeder, holding: .full(count: chunks), now: 1)
        #expect(state.worksWith(seeder), "known whole: a seeder, whatever the stale view says")
        #expect(state.membership?.isMember(seeder) == true, "the view is made again only by the next look")
    }

    @Test("the relay grace grows with the overlay's digits: a chunk may come through a partner in between")
    func graceFollowsHops() throws {
        let chunks = 8
        var state = try self.crowdDownload(chunks: chunks, seederHeard: false)
        let crowd = RelayMembershipTests.peers(30)
        _ = state.update(self.seeder, holding: .full(count: chunks), now: 0)
        #expect(state.scheduler.relayGrace == 1)
        let seen = state.see(crowd + [self.seeder], me: crowd[0], maximumPartners: 8)
        let membership = try #require(seen)
        #expect(membership.overlay.dimensions >= 2)
        #expect(state.scheduler.relayGrace == Double(membership.overlay.dimensions))
        // A chunk a partner holds, seen at 0, is held back until the longer grace is over.
        let partner = membership.partners.sorted()[0]
        var held = ChunkBitmap(count: chunks)
        held.insert(3)
        _ = state.update(partner, holding: held, now: 0)
        let early = state.next(for: partner, now: 1.5)
        #expect(early == nil)
        let late = state.next(for: partner, now: Double(membership.overlay.dimensions) + 0.1)
        #expect(late == 3)
    }

    @Test("a downloader with partners paces its work as a relayer before anyone subscribes; one alone does not")
    func partnersMakeARelayer() throws {
        let chunks = 8
        var alone = try self.crowdDownload(chunks: chunks, seederHeard: true)
        #expect(!alone.hasRelayPartners)
        _ = alone.see([self.seeder], me: self.other, maximumPartners: 16)
        #expect(!alone.hasRelayPartners, "just this peer and its seeder")
        // A third peer in the table that serves other things is no one to relay to.
        var idleThird = try self.crowdDownload(chunks: chunks, seederHeard: true)
        _ = idleThird.see([self.seeder, self.third], me: self.other, maximumPartners: 16)
        #expect(!idleThird.hasRelayPartners)
        // Its inventory does not list the file: it still is not.
        _ = idleThird.update(self.third, holding: ChunkBitmap(count: chunks), now: 0, listsFile: false)
        #expect(!idleThird.hasRelayPartners)
        var crowd = try self.crowdDownload(chunks: chunks, seederHeard: true)
        _ = crowd.see([self.seeder, self.third], me: self.other, maximumPartners: 16)
        _ = crowd.update(self.third, holding: ChunkBitmap(count: chunks), now: 0)
        #expect(crowd.hasRelayPartners, "the third peer is heard downloading the file")
        _ = crowd.update(self.third, holding: ChunkBitmap(count: chunks), now: 1, listsFile: false)
        #expect(!crowd.hasRelayPartners, "it gave the download up")
    }
}
