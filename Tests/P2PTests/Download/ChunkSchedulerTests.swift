import Testing

@testable import P2P

@Suite("ChunkScheduler")
struct ChunkSchedulerTests {
    let a = PeerID(high: 0, low: 1)
    let b = PeerID(high: 0, low: 2)
    let c = PeerID(high: 0, low: 3)

    func bitmap(_ count: Int, _ indices: [Int]) -> ChunkBitmap {
        var bitmap = ChunkBitmap(count: count)
        for index in indices { bitmap.insert(index) }
        return bitmap
    }

    /// A scheduler of `count` chunks, relaying, with `a` as the one peer that holds them all.
    func relayingScheduler(count: Int, grace: Double) -> ChunkScheduler {
        var scheduler = ChunkScheduler(have: ChunkBitmap(count: count))
        scheduler.relaying = true
        scheduler.relayGrace = grace
        scheduler.update(self.a, holding: .full(count: count), now: 0)
        return scheduler
    }

    @Test("rarest chunks are asked for first")
    func rarestFirst() {
        var scheduler = ChunkScheduler(have: ChunkBitmap(count: 4))
        scheduler.update(self.a, holding: self.bitmap(4, [0, 1, 2, 3]))
        scheduler.update(self.b, holding: self.bitmap(4, [0, 1, 2]))
        scheduler.update(self.c, holding: self.bitmap(4, [0, 1]))
        // Chunk 3 is held by one peer, 2 by two, 0 and 1 by three.
        #expect(scheduler.next(for: self.a) == 3)
        #expect(scheduler.next(for: self.a) == 2)
        let third = scheduler.next(for: self.a)
        #expect(third == 0 || third == 1)
    }

    @Test("a chunk in flight is not given to a second peer until the endgame")
    func noDuplicatesBeforeEndgame() {
        var scheduler = ChunkScheduler(have: ChunkBitmap(count: 3))
        scheduler.update(self.a, holding: .full(count: 3))
        scheduler.update(self.b, holding: .full(count: 3))
        var given = Set<Int>()
        for _ in 0..<3 {
            let chunk = scheduler.next(for: self.a)!
            #expect(given.insert(chunk).inserted)
        }
        // Endgame: b may duplicate one of a's requests, at most one copy each.
        let duplicate = scheduler.next(for: self.b)
        #expect(duplicate != nil && given.contains(duplicate!))
        let firstCopy = scheduler.completed(duplicate!, from: self.b)
        let secondCopy = scheduler.completed(duplicate!, from: self.a)
        #expect(firstCopy)
        #expect(!secondCopy)
    }

    @Test("a peer that leaves frees its requests; a peer that lacks a chunk is not asked again")
    func removeAndLack() {
        var scheduler = ChunkScheduler(have: ChunkBitmap(count: 2))
        scheduler.update(self.a, holding: .full(count: 2))
        let first = scheduler.next(for: self.a)!
        scheduler.remove(self.a)
        scheduler.update(self.b, holding: .full(count: 2))
        var seen = Set<Int>()
        while let next = scheduler.next(for: self.b), seen.insert(next).inserted {}
        #expect(seen.contains(first))

        var lacking = ChunkScheduler(have: ChunkBitmap(count: 1))
        lacking.update(self.c, holding: .full(count: 1))
        #expect(lacking.next(for: self.c) == 0)
        lacking.lacks(0, peer: self.c)
        #expect(lacking.next(for: self.c) == nil)
    }

    @Test("nothing is asked for once every chunk is held")
    func complete() {
        var scheduler = ChunkScheduler(have: .full(count: 2))
        scheduler.update(self.a, holding: .full(count: 2))
        #expect(scheduler.isComplete)
        #expect(scheduler.next(for: self.a) == nil)
        #expect(!scheduler.isUseful(self.a))
    }

    @Test("relaying: the one seeder is asked for work, and relayed chunks are not asked for until overdue")
    func relaying() {
        var scheduler = self.relayingScheduler(count: 4, grace: 1.0)
        scheduler.update(self.b, holding: self.bitmap(4, []), now: 0)
        #expect(scheduler.workSource == self.a)
        // Nothing may be pulled: the seeder's chunks come as work, the rest relayed.
        #expect(scheduler.next(for: self.a, now: 0.5) == nil)
        // b got chunk 1 at 2 s; it is on its way here, so it is left alone for the grace.
        scheduler.update(self.b, holding: self.bitmap(4, [1]), now: 2)
        #expect(scheduler.next(for: self.b, now: 2.5) == nil)
        #expect(scheduler.next(for: self.b, now: 3.1) == 1)
        let fresh = scheduler.completed(1, from: self.b)
        #expect(fresh)
        // The seeder has handed out everything: after the grace, what only it holds is asked of it.
        scheduler.workExhausted(now: 4)
        #expect(scheduler.workSource == nil)
        #expect(scheduler.next(for: self.a, now: 4.5) == nil)
        let late = scheduler.next(for: self.a, now: 5.1)
        #expect(late == 0 || late == 2 || late == 3)
    }

    @Test("relaying: chunks a relayer says it will not forward are asked for at once, of whoever holds them")
    func unrelayedChunksAreNotWaitedFor() {
        var scheduler = self.relayingScheduler(count: 4, grace: 1.0)
        // b and c each hold chunk 0; c also holds 1 and 2. All seen at 1 s.
        scheduler.update(self.b, holding: self.bitmap(4, [0]), now: 1)
        scheduler.update(self.c, holding: self.bitmap(4, [0, 1, 2]), now: 1)
        #expect(scheduler.next(for: self.c, now: 1.1) == nil)
        // b was handed chunks 0 and 3 before this peer subscribed: 0 is asked of c right
        // away, and 3, which b's inventory did not list yet, of b.
        scheduler.unrelayed(self.bitmap(4, [0, 3]), by: self.b, now: 1.2)
        #expect(scheduler.next(for: self.c, now: 1.2) == 0)
        #expect(scheduler.next(for: self.b, now: 1.2) == 3)
        // Chunks 1 and 2 may still come forwarded: they wait for the grace.
        #expect(scheduler.next(for: self.c, now: 1.3) == nil)
        #expect(scheduler.next(for: self.c, now: 2.1) != nil)
    }

    @Test("relaying: no endgame copies while the seeder still hands out work; once it is done, they come back")
    func noEndgameWhileSeederHasWork() {
        var scheduler = self.relayingScheduler(count: 4, grace: 1.0)
        // Two downloaders hold chunk 0: the first one's, handed out before anyone
        // subscribed to its relays, and a copy it passed on.
        scheduler.update(self.b, holding: self.bitmap(4, [0]), now: 0)
        scheduler.update(self.c, holding: self.bitmap(4, [0]), now: 0)
        #expect(scheduler.next(for: self.b, now: 1.5) == 0)
        // c holds nothing else this peer lacks: with the seeder still at work, it is not
        // asked for a second copy of chunk 0.
        #expect(scheduler.next(for: self.c, now: 1.5) == nil)
        scheduler.workExhausted(now: 2)
        #expect(scheduler.next(for: self.c, now: 2) == 0)
    }

    @Test("relaying: once the seeder has no work, a lone downloader pulls at once; with another downloader it waits")
    func loneDownloaderAfterWork() {
        // The seeder handed every chunk to a peer that has gone (an earlier download).
        var alone = self.relayingScheduler(count: 3, grace: 1.5)
        alone.update(self.b, holding: self.bitmap(3, []), now: 0)  // a peer without the file
        #expect(alone.workSource == self.a)
        #expect(alone.next(for: self.a, now: 0.1) == nil)
        alone.workExhausted(now: 0.1)
        #expect(alone.next(for: self.a, now: 0.1) != nil)

        // Another downloader holds part of the file: what only the seeder holds may still
        // be on its way from it, so the grace applies.
        var crowd = self.relayingScheduler(count: 3, grace: 1.5)
        crowd.update(self.b, holding: self.bitmap(3, [0]), now: 0)
        crowd.workExhausted(now: 0.1)
        #expect(crowd.next(for: self.a, now: 0.2) == nil)
        #expect(crowd.next(for: self.a, now: 1.7) != nil)
        // And when that downloader leaves, there is nobody to wait for.
        var leaving = crowd
        leaving.remove(self.b)
        #expect(leaving.next(for: self.a, now: 0.3) != nil)
    }

    @Test("relaying needs exactly one seeder: with two, every chunk is pulled at once")
    func twoSeedersPull() {
        var scheduler = ChunkScheduler(have: ChunkBitmap(count: 2))
        scheduler.relaying = true
        scheduler.update(self.a, holding: .full(count: 2))
        scheduler.update(self.b, holding: .full(count: 2))
        #expect(scheduler.workSource == nil)
        #expect(scheduler.next(for: self.a) != nil)
        #expect(scheduler.next(for: self.b) != nil)
    }

    @Test("several seeders: the scan stops at a chunk no rarer one can beat, and rarest first still holds")
    func severalSeeders() {
        // Three seeders and a downloader that holds chunks 0..<8 of 64.
        let d = PeerID(high: 0, low: 4)
        var scheduler = ChunkScheduler(have: ChunkBitmap(count: 64))
        for seeder in [self.a, self.b, self.c] { scheduler.update(seeder, holding: .full(count: 64)) }
        scheduler.update(d, holding: self.bitmap(64, Array(0..<8)))
        // Chunks 8..<64 are held by the three seeders only: as rare as any chunk can be, so
        // each is taken as the scan meets it, in order from the cursor, none skipped.
        var asked: [Int] = []
        for _ in 0..<56 { if let chunk = scheduler.next(for: self.a) { asked.append(chunk) } }
        #expect(asked == Array(8..<64))
        // Then the chunks the downloader holds too (four holders) for the downloader.
        #expect(scheduler.next(for: d) == 0)
        // A peer holding only common chunks still gets the rarest of them.
        let e = PeerID(high: 0, low: 5)
        scheduler.update(e, holding: self.bitmap(64, [1, 2]))
        scheduler.lacks(1, peer: d)
        // Chunk 1: three seeders and e (4); chunk 2: three seeders, d and e (5).
        #expect(scheduler.next(for: e) == 1)
    }
}
