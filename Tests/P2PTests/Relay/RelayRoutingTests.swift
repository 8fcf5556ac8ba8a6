import Testing

@testable import P2P

/// The relayer's routing as a value: who takes which chunk and piece, what a late
/// subscriber missed, when a backlog waiter is released.
@Suite("RelayRouting")
struct RelayRoutingTests {
    let file = FileID(bytes: [UInt8](repeating: 7, count: 32))!
    let other = FileID(bytes: [UInt8](repeating: 8, count: 32))!

    @Test("a late subscriber is told which chunks were forwarded before it")
    func lateSubscriberMisses() {
        var routing = RelayRouting(maximumQueuedBytes: 1000)
        let (_, untracked) = routing.subscribe(to: self.file)
        #expect(untracked == nil)
        routing.beginDownload(of: self.file, chunkCount: 4)
        let first = routing.subscribe(to: self.file)
        #expect(first.missed?.setCount == 0)
        let firstTakers = routing.route(chunk: 2, of: self.file, offset: 0, length: 100, chunkLength: 100).takers
        #expect(Set(firstTakers).contains(first.id))
        #expect(routing.hasForwarded(2, of: self.file))
        let late = routing.subscribe(to: self.file)
        #expect(late.missed?.indices == [2])
        routing.endDownload(of: self.file)
        #expect(!routing.hasForwarded(2, of: self.file))
    }

    @Test("a chunk is taken whole or not at all: first pieces only where it fits, the rest to those takers")
    func piecesFollowTheFirst() {
        var routing = RelayRouting(maximumQueuedBytes: 300)
        let roomy = routing.subscribe(to: self.file).id
        let full = routing.subscribe(to: self.file).id
        let elsewhere = routing.subscribe(to: self.other).id
        // Fill one queue: 250 of its 300 bytes.
        let wholeTakers = routing.route(chunk: 0, of: self.file, offset: 0, length: 250, chunkLength: 250).takers
        #expect(Set(wholeTakers) == [roomy, full])
        _ = routing.written(250, by: roomy)
        #expect(routing.backlog(of: self.file) == 250)
        // A 200-byte chunk in two pieces: the first goes only where 200 fits.
        let pieceTakers = routing.route(chunk: 1, of: self.file, offset: 0, length: 100, chunkLength: 200).takers
        #expect(pieceTakers == [roomy])
        // The rest follows to the same subscriber, even past the queue's bound.
        _ = routing.written(0, by: full)
        let takers = routing.route(chunk: 1, of: self.file, offset: 100, length: 100, chunkLength: 200).takers
        #expect(takers == [roomy])
        // Both have room for a small chunk; the other file's subscriber gets none of it. An
        // abort reaches only those with its pieces open, once.
        let smallTakers = routing.route(chunk: 2, of: self.file, offset: 0, length: 10, chunkLength: 20).takers
        #expect(Set(smallTakers) == [roomy, full] && !smallTakers.contains(elsewhere))
        let told = routing.abort(2, of: self.file)
        #expect(Set(told) == [roomy, full])
        let toldAgain = routing.abort(2, of: self.file)
        #expect(toldAgain.isEmpty)
        #expect(routing.subscriberCount(of: self.file) == 2)
    }

    @Test("a subscriber that named itself and has no room for a chunk is named as dropped; one that did not is not")
    func droppedAreNamed() {
        var routing = RelayRouting(maximumQueuedBytes: 300)
        routing.beginDownload(of: self.file, chunkCount: 4)
        let named = routing.subscribe(to: self.file, from: PeerID(high: 1, low: 1)).id
        let anonymous = routing.subscribe(to: self.file).id
        let first = routing.route(chunk: 0, of: self.file, offset: 0, length: 250, chunkLength: 250)
        #expect(Set(first.takers) == [named, anonymous] && first.dropped.isEmpty)
        // Neither has room for 200 more: only the one that named itself is told.
        let second = routing.route(chunk: 1, of: self.file, offset: 0, length: 100, chunkLength: 200)
        #expect(second.takers.isEmpty)
        #expect(second.dropped == [named])
        // Later pieces of a chunk nobody took drop nothing more.
        let rest = routing.route(chunk: 1, of: self.file, offset: 100, length: 100, chunkLength: 200)
        #expect(rest.takers.isEmpty && rest.dropped.isEmpty)
        // What is queued in all, and its peak: chunk 0 for both.
        #expect(routing.queuedBytes == 500 && routing.peakQueuedBytes == 500)
        _ = routing.written(250, by: named)
        _ = routing.unsubscribe(anonymous)
        #expect(routing.queuedBytes == 0 && routing.peakQueuedBytes == 500)
    }

    @Test("a backlog waiter is released when the longest queue falls below its level, or its subscriber goes")
    func waitersReleased() {
        var routing = RelayRouting(maximumQueuedBytes: 1000)
        let a = routing.subscribe(to: self.file).id
        let b = routing.subscribe(to: self.file).id
        let waits = routing.wait(1, untilBacklogOf: self.file, isBelow: 100)
        #expect(!waits)
        _ = routing.route(chunk: 0, of: self.file, offset: 0, length: 300, chunkLength: 300).takers
        let waitsNow = routing.wait(1, untilBacklogOf: self.file, isBelow: 100)
        #expect(waitsNow)
        // Below 400 already: nothing to wait for.
        let waitsBelow = routing.wait(2, untilBacklogOf: self.file, isBelow: 400)
        #expect(!waitsBelow)
        let waitsAgain = routing.wait(2, untilBacklogOf: self.file, isBelow: 200)
        #expect(waitsAgain)
        let released = routing.written(300, by: a)
        #expect(released.isEmpty)  // b still holds 300
        let gone = routing.unsubscribe(b)
        #expect(Set(gone.released) == [1, 2])
        let goneAgain = routing.unsubscribe(b)
        #expect(goneAgain.wasSubscribed == false)
    }

    @Test("with a membership, chunks go to the overlay's partners; a late subscriber misses only what it would get")
    func overlayRouting() {
        let peers = RelayMembershipTests.peers(30)
        let me = peers[0]
        let membership = RelayMembership(me: me, downloaders: peers, maximumPartners: 8)
        // A partner in the highest digit: what comes from it goes on to the lower ones.
        let partner = membership.partners.sorted().max {
            membership.onward(receivedFrom: $0)!.count < membership.onward(receivedFrom: $1)!.count
        }!
        let stranger = peers.first { !membership.partners.contains($0) && $0 != me }!
        var routing = RelayRouting(maximumQueuedBytes: 10_000)
        routing.beginDownload(of: self.file, chunkCount: 8)
        routing.setMembership(membership, of: self.file)
        let partnerSub = routing.subscribe(to: self.file, from: partner).id
        let strangerSub = routing.subscribe(to: self.file, from: stranger).id
        let anonymous = routing.subscribe(to: self.file).id
        // Handed out here: to partners only.
        let rootTakers = routing.route(chunk: 0, of: self.file, offset: 0, length: 100, chunkLength: 100).takers
        #expect(rootTakers == [partnerSub])
        #expect(!rootTakers.contains(strangerSub) && !rootTakers.contains(anonymous))
        // Relayed from the partner: on to the partners in the lower digits, never back.
        let onward = membership.onward(receivedFrom: partner)!
        #expect(!onward.isEmpty && !onward.contains(partner))
        let relayedTakers = routing.route(
            chunk: 1,
            of: self.file,
            offset: 0,
            length: 100,
            chunkLength: 100,
            receivedFrom: partner
        ).takers
        #expect(!relayedTakers.contains(partnerSub))
        #expect(routing.hasForwarded(0, of: self.file))
        #expect(routing.hasForwarded(1, of: self.file))
        // A late partner of the lower digits missed both chunks; the partner the chunk came
        // from only the one handed out here.
        let lower = onward.sorted()[0]
        let lowerMissed = routing.subscribe(to: self.file, from: lower).missed
        #expect(lowerMissed?.indices == [0, 1])
        let partnerMissed = routing.subscribe(to: self.file, from: partner).missed
        #expect(partnerMissed?.indices == [0])
        let strangerMissed = routing.subscribe(to: self.file, from: stranger).missed
        #expect(strangerMissed?.indices == [])
    }

    @Test("without a membership a relayed chunk goes nowhere, as in the flash crowd's full mesh")
    func relayedStaysWithoutMembership() {
        var routing = RelayRouting(maximumQueuedBytes: 10_000)
        routing.beginDownload(of: self.file, chunkCount: 4)
        let subscriber = routing.subscribe(to: self.file, from: PeerID(high: 1, low: 1)).id
        let source = PeerID(high: 2, low: 2)
        let relayed = routing.route(
            chunk: 0,
            of: self.file,
            offset: 0,
            length: 10,
            chunkLength: 10,
            receivedFrom: source
        ).takers
        #expect(relayed == [])
        #expect(!routing.hasForwarded(0, of: self.file))
        let handedOut = routing.route(chunk: 1, of: self.file, offset: 0, length: 10, chunkLength: 10).takers
        #expect(handedOut == [subscriber])
    }
}
