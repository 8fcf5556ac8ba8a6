import NIOCore
import Testing

@testable import P2P

@Suite("WorkDispenser and RelayHub", .timeLimit(.minutes(1)))
struct RelayTests {
    let file = FileID(bytes: [UInt8](repeating: 7, count: 32))!
    let other = FileID(bytes: [UInt8](repeating: 8, count: 32))!

    @Test("each chunk is handed out once per round, in order, skipping what the requester holds")
    func dispenserHandsEachOnce() {
        let dispenser = WorkDispenser(roundIdleTimeout: .seconds(3))
        let now = NIODeadline.now()
        var holds = ChunkBitmap(count: 5)
        holds.insert(1)
        #expect(dispenser.next(of: self.file, chunkCount: 5, requesterHolds: holds, now: now) == 0)
        #expect(dispenser.next(of: self.file, chunkCount: 5, requesterHolds: holds, now: now) == 2)
        // Another requester gets what nobody was handed, 1 included.
        let empty = ChunkBitmap(count: 5)
        #expect(dispenser.next(of: self.file, chunkCount: 5, requesterHolds: empty, now: now) == 1)
        #expect(dispenser.next(of: self.file, chunkCount: 5, requesterHolds: empty, now: now) == 3)
        #expect(dispenser.next(of: self.file, chunkCount: 5, requesterHolds: empty, now: now) == 4)
        #expect(dispenser.next(of: self.file, chunkCount: 5, requesterHolds: empty, now: now) == nil)
        // A chunk that could not be sent goes back.
        dispenser.giveBack(3, of: self.file)
        #expect(dispenser.next(of: self.file, chunkCount: 5, requesterHolds: empty, now: now) == 3)
        // Files have rounds of their own.
        #expect(dispenser.next(of: self.other, chunkCount: 2, requesterHolds: ChunkBitmap(count: 2), now: now) == 0)
        // After a quiet spell the next crowd starts a new round.
        let later = now + .seconds(4)
        #expect(dispenser.next(of: self.file, chunkCount: 5, requesterHolds: empty, now: later) == 0)
    }

    @Test("forwarded chunks reach every subscriber of the file; the backlog is the longest queue not yet written")
    func hubForwards() async {
        let hub = RelayHub(maximumQueuedBytes: 1000)
        let first = hub.subscribe(to: self.file)
        let second = hub.subscribe(to: self.file)
        let unrelated = hub.subscribe(to: self.other)
        #expect(hub.subscriberCount(of: self.file) == 2)
        let bytes = ByteBuffer(bytes: [UInt8](repeating: 3, count: 400))
        #expect(hub.forward(bytes, chunk: 4, of: self.file) == 2)
        #expect(hub.backlog(of: self.file) == 400)
        #expect(hub.backlog(of: self.other) == 0)
        // A third forward would pass the queue bound: dropped for both.
        #expect(hub.forward(bytes, chunk: 5, of: self.file) == 2)
        #expect(hub.forward(bytes, chunk: 6, of: self.file) == 0)

        var iterator = first.chunks.makeAsyncIterator()
        let got = await iterator.next()
        #expect(got?.chunk == 4 && got?.bytes == bytes)
        let wakeup = Wakeup()
        #expect(hub.signalWhenBacklog(of: self.file, isBelow: 800, wakeup))
        first.written(got!)
        // The first queue is shorter now, the second is not.
        #expect(hub.backlog(of: self.file) == 800)
        second.cancel()
        // Cancelling a subscriber drops its queue and wakes who waits for the backlog.
        #expect(hub.backlog(of: self.file) == 400)
        await wakeup.wait()
        #expect(!hub.signalWhenBacklog(of: self.file, isBelow: 800, wakeup))
        first.cancel()
        unrelated.cancel()
        #expect(hub.subscriberCount(of: self.file) == 0)
    }

    @Test("a subscriber learns which chunks of a file downloaded here were forwarded before it came")
    func hubTellsLateSubscribersWhatTheyMissed() {
        let hub = RelayHub()
        let bytes = ByteBuffer(bytes: [UInt8](repeating: 3, count: 10))
        // Not downloaded here: nothing is recorded.
        hub.forward(bytes, chunk: 0, of: self.file)
        let before = hub.subscribe(to: self.file)
        #expect(before.missed == nil)

        hub.beginDownload(of: self.file, chunkCount: 6)
        hub.forward(bytes, chunk: 1, of: self.file)
        hub.forward(bytes, chunk: 4, of: self.file)
        hub.forward(bytes, chunk: 9, of: self.file)  // out of range: ignored
        let late = hub.subscribe(to: self.file)
        #expect(late.missed?.indices == [1, 4])
        // What is forwarded after it subscribed comes on its stream, not in what it missed.
        hub.forward(bytes, chunk: 2, of: self.file)
        #expect(late.missed?.indices == [1, 4])
        #expect(hub.subscribe(to: self.file).missed?.indices == [1, 2, 4])
        // Another file, and a file whose downloads all ended, have no record.
        #expect(hub.subscribe(to: self.other).missed == nil)
        hub.beginDownload(of: self.file, chunkCount: 6)  // a second download of the same file
        hub.endDownload(of: self.file)
        #expect(hub.subscribe(to: self.file).missed?.indices == [1, 2, 4])
        hub.endDownload(of: self.file)
        #expect(hub.subscribe(to: self.file).missed == nil)
    }
}

@Suite("RelayHub forwarding in pieces", .timeLimit(.minutes(1)))
struct RelayPieceTests {
    let file = FileID(bytes: [UInt8](repeating: 7, count: 32))!

    static func piece(_ value: UInt8, _ count: Int) -> ByteBuffer {
        ByteBuffer(bytes: [UInt8](repeating: value, count: count))
    }

    /// What a subscription has been given so far, as (chunk, kind, bytes).
    static func drain(
        _ subscription: RelayHub.Subscription,
        count: Int
    ) async -> [(chunk: Int, kind: RelayHub.Relayed.Kind, bytes: Int)] {
        var iterator = subscription.chunks.makeAsyncIterator()
        var got: [(chunk: Int, kind: RelayHub.Relayed.Kind, bytes: Int)] = []
        for _ in 0..<count {
            guard let relayed = await iterator.next() else { break }
            got.append((relayed.chunk, relayed.kind, relayed.bytes.readableBytes))
            subscription.written(relayed)
        }
        return got
    }

    @Test("a chunk's pieces go to the subscribers that had room for the whole chunk at its first piece")
    func wholeChunkOrNothing() async {
        let hub = RelayHub(maximumQueuedBytes: 1000)
        let roomy = hub.subscribe(to: self.file)
        let full = hub.subscribe(to: self.file)
        // Fill the second subscriber's queue to 700 of 1000 bytes.
        hub.beginDownload(of: self.file, chunkCount: 8)
        #expect(hub.forwardPiece(Self.piece(1, 700), chunk: 0, offset: 0, chunkLength: 700, of: self.file) == 2)
        var first = roomy.chunks.makeAsyncIterator()
        roomy.written(await first.next()!)
        // A 600-byte chunk fits the first queue only; its later pieces follow it there, even
        // past the bound, and never start at the second.
        #expect(hub.forwardPiece(Self.piece(2, 200), chunk: 3, offset: 0, chunkLength: 600, of: self.file) == 1)
        #expect(hub.forwardPiece(Self.piece(2, 200), chunk: 3, offset: 200, chunkLength: 600, of: self.file) == 1)
        #expect(hub.forwardPiece(Self.piece(2, 200), chunk: 3, offset: 400, chunkLength: 600, of: self.file) == 1)
        #expect(hub.backlog(of: self.file) == 700)
        let got = await Self.drain(roomy, count: 3)
        #expect(got.map(\.chunk) == [3, 3, 3])
        #expect(got.map(\.kind) == [.piece(offset: 0), .piece(offset: 200), .piece(offset: 400)])
        // The chunk counts as forwarded from its first piece on: a later subscriber is told.
        #expect(hub.subscribe(to: self.file).missed?.indices == [0, 3])
        roomy.cancel()
        full.cancel()
    }

    @Test("an abort reaches exactly the subscribers that have the chunk's first pieces")
    func abortGoesWhereThePiecesWent() async {
        let hub = RelayHub(maximumQueuedBytes: 1000)
        let early = hub.subscribe(to: self.file)
        #expect(hub.forwardPiece(Self.piece(1, 300), chunk: 5, offset: 0, chunkLength: 600, of: self.file) == 1)
        // Subscribed after the first piece: gets neither the rest of chunk 5 nor its abort.
        let late = hub.subscribe(to: self.file)
        #expect(hub.forwardPiece(Self.piece(1, 100), chunk: 5, offset: 300, chunkLength: 600, of: self.file) == 1)
        hub.abort(5, of: self.file)
        // A chunk after the abort goes to both; an abort of a chunk nobody has is nothing.
        #expect(hub.forwardPiece(Self.piece(4, 50), chunk: 6, offset: 0, chunkLength: 50, of: self.file) == 2)
        hub.abort(6, of: self.file)
        let earlyGot = await Self.drain(early, count: 4)
        #expect(earlyGot.map(\.chunk) == [5, 5, 5, 6])
        #expect(earlyGot.map(\.kind) == [.piece(offset: 0), .piece(offset: 300), .abort, .piece(offset: 0)])
        let lateGot = await Self.drain(late, count: 1)
        #expect(lateGot.map(\.chunk) == [6])
        // Pieces after an abort are not forwarded: the chunk is closed everywhere.
        #expect(hub.forwardPiece(Self.piece(1, 200), chunk: 5, offset: 400, chunkLength: 600, of: self.file) == 0)
        #expect(hub.backlog(of: self.file) == 0)
        early.cancel()
        late.cancel()
    }
}
