import NIOCore
import Testing

@testable import P2P

@Suite("DeliveryTracker")
struct DeliveryTrackerTests {
    typealias F = DeliveryFixtures
    static let start = ContinuousClock.now
    static let address = try! SocketAddress(ipAddress: "127.0.0.1", port: 47475)

    static func peer(_ low: UInt64, _ name: String) -> KnownPeer {
        var peer = KnownPeer.fixture(low, at: Self.address)
        peer.name = try! PeerName(name)
        return peer
    }

    static func at(_ seconds: Double) -> ContinuousClock.Instant {
        Self.start + .milliseconds(Int64(seconds * 1000))
    }

    static func tracker(
        _ selection: DeliveryTracker.Selection,
        items: [DeliveryItem] = [F.item()],
        timeout: Duration? = .seconds(60)
    ) -> DeliveryTracker {
        DeliveryTracker(
            items: items,
            selection: selection,
            sender: F.sender,
            key: F.key,
            now: Self.start,
            timeout: timeout,
            quietPeriod: .seconds(2),
            retryDelay: .seconds(1)
        )
    }

    static func number(_ value: UInt8) -> [UInt8] { [UInt8](repeating: value, count: DeliveryOffer.numberLength) }

    /// Offers the next item to `id` and returns the offer.
    static func offer(_ tracker: inout DeliveryTracker, to id: PeerID, number: UInt8, at time: Double) -> DeliveryOffer?
    {
        let step = tracker.nextStep(for: id, number: Self.number(number), now: Self.at(time))
        guard case .offer(let offer) = step else { return nil }
        return offer
    }

    /// Takes `id` through accepted and a valid receipt for `offer`.
    static func verify(_ tracker: inout DeliveryTracker, _ offer: DeliveryOffer, at time: Double) -> Bool {
        tracker.answered(offer.target, refusal: nil, now: Self.at(time))
        return tracker.receipt(offer.target, tag: DeliveryReceipt(signing: offer, with: F.key).tag, now: Self.at(time))
    }

    @Test("to all: every peer heard but this sender is a target, offered the item, and verified by its receipt")
    func deliversToAll() throws {
        var tracker = Self.tracker(.all)
        let added = tracker.heard(
            [Self.peer(1, "alpha"), Self.peer(2, "beta"), KnownPeer.fixture(F.sender.low, at: Self.address)],
            now: Self.at(0)
        )
        #expect(Set(added.map(\.id)) == [PeerID(high: 0, low: 1), PeerID(high: 0, low: 2)])
        // Heard again: no new targets.
        let heardAgain = tracker.heard([Self.peer(1, "alpha"), Self.peer(2, "beta")], now: Self.at(0.1))
        #expect(heardAgain.isEmpty)
        for peer in added {
            let offer = try #require(Self.offer(&tracker, to: peer.id, number: UInt8(peer.id.low), at: 0.2))
            #expect(offer.target == peer.id && offer.sender == F.sender && offer.item == F.item())
            #expect(offer.waitSeconds == 60)
            tracker.answered(peer.id, refusal: nil, now: Self.at(0.3))
            #expect(tracker.targets[peer.id]?.phase == .fetching)
            tracker.progressed(peer.id, bytes: 0, now: Self.at(0.3))
            tracker.progressed(peer.id, bytes: 4 << 20, now: Self.at(1.3))
            #expect(tracker.targets[peer.id]?.bytesPerSecond == Double(4 << 20))
            #expect(tracker.verdict(now: Self.at(1.3)) == .going)
            let tag = DeliveryReceipt(signing: offer, with: F.key).tag
            let valid = tracker.receipt(peer.id, tag: tag, now: Self.at(1.5))
            #expect(valid)
            #expect(tracker.targets[peer.id]?.phase == .verified)
            #expect(tracker.share(of: try #require(tracker.targets[peer.id])) == 1)
        }
        // Everyone verified, but a peer that comes up now is still heard in time.
        #expect(tracker.verdict(now: Self.at(1.6)) == .going)
        #expect(tracker.verdict(now: Self.at(2.0)) == .delivered)
        #expect(tracker.receipts.count == 2)
        let after = tracker.nextStep(for: PeerID(high: 0, low: 1), number: Self.number(9), now: Self.at(2))
        #expect(after == .stop)
    }

    @Test("to all: a peer that comes online late becomes a target and the send waits for its receipt")
    func lateJoiner() throws {
        var tracker = Self.tracker(.all)
        // Nobody accepting at first: the send waits, not ends.
        let nobody = tracker.heard([], now: Self.at(0))
        #expect(nobody.isEmpty)
        #expect(tracker.verdict(now: Self.at(10)) == .going)
        let late = try #require(tracker.heard([Self.peer(1, "late")], now: Self.at(20)).first)
        let offer = try #require(Self.offer(&tracker, to: late.id, number: 1, at: 20))
        #expect(offer.waitSeconds == 41)
        let verified = Self.verify(&tracker, offer, at: 25)
        #expect(verified)
        #expect(tracker.verdict(now: Self.at(25)) == .delivered)
    }

    @Test("to all: a peer that does not accept is no target; with none accepting the send times out saying so")
    func noneAccepting() throws {
        var tracker = Self.tracker(.all, timeout: .seconds(10))
        let peer = try #require(tracker.heard([Self.peer(1, "closed")], now: Self.at(0)).first)
        _ = try #require(Self.offer(&tracker, to: peer.id, number: 1, at: 0))
        tracker.answered(peer.id, refusal: DeliveryRefusal(.notAccepting, "does not accept"), now: Self.at(0.1))
        #expect(tracker.targets[peer.id]?.phase == .notAccepting)
        let next = tracker.nextStep(for: peer.id, number: Self.number(2), now: Self.at(1))
        #expect(next == .stop)
        #expect(tracker.verdict(now: Self.at(5)) == .going)
        #expect(tracker.verdict(now: Self.at(10)) == .timedOut(["no peer that accepts deliveries was heard"]))
    }

    @Test("a named target that refuses makes the send fail with its reason, once the others are settled")
    func namedRefusal() throws {
        var tracker = Self.tracker(.named(["alpha", "beta"]))
        let added = tracker.heard(
            [Self.peer(1, "alpha"), Self.peer(2, "beta"), Self.peer(3, "gamma")],
            now: Self.at(0)
        )
        #expect(added.map(\.id).sorted() == [PeerID(high: 0, low: 1), PeerID(high: 0, low: 2)])
        let alpha = try #require(Self.offer(&tracker, to: PeerID(high: 0, low: 1), number: 1, at: 0))
        _ = try #require(Self.offer(&tracker, to: PeerID(high: 0, low: 2), number: 2, at: 0))
        tracker.answered(PeerID(high: 0, low: 2), refusal: DeliveryRefusal(.quota, "over its quota"), now: Self.at(0.1))
        #expect(tracker.verdict(now: Self.at(0.1)) == .going)
        let verified = Self.verify(&tracker, alpha, at: 1)
        #expect(verified)
        #expect(
            tracker.verdict(now: Self.at(1))
                == .failed(["beta: missing image.iso (0 of 10485760 bytes): refused: over its quota"])
        )
    }

    @Test("a name several peers share fails naming the forms that tell them apart; those forms and id prefixes work")
    func duplicateNames() throws {
        func twin(_ high: UInt64) -> KnownPeer {
            var peer = Self.peer(1, "laptop")
            peer.id = PeerID(high: high, low: 1)
            return peer
        }
        let twins = [twin(0xAAAA_AAAA_0000_0000), twin(0xBBBB_BBBB_0000_0000)]
        var ambiguous = Self.tracker(.named(["laptop"]))
        let none = ambiguous.heard(twins, now: Self.at(0))
        #expect(none.isEmpty)
        guard case .failed(let lines) = ambiguous.verdict(now: Self.at(0)) else {
            Issue.record("an ambiguous name should fail the send")
            return
        }
        #expect(lines == ["laptop: 'laptop' names 2 peers: laptop#aaaaaaaa, laptop#bbbbbbbb; pick one"])
        var byLabel = Self.tracker(.named(["laptop#bbbbbbbb"]))
        let labelled = byLabel.heard(twins, now: Self.at(0))
        #expect(labelled.map(\.id) == [twins[1].id])
        #expect(byLabel.targets[twins[1].id]?.label == "laptop#bbbbbbbb")
        var byID = Self.tracker(.named(["aaaa"]))
        let prefixed = byID.heard(twins, now: Self.at(0))
        #expect(prefixed.map(\.id) == [twins[0].id])
    }

    @Test("a named target not heard by the deadline is reported missing")
    func namedNotHeard() {
        var tracker = Self.tracker(.named(["ghost"]), timeout: .seconds(5))
        let added = tracker.heard([Self.peer(1, "alpha")], now: Self.at(0))
        #expect(added.isEmpty)
        #expect(tracker.verdict(now: Self.at(4)) == .going)
        #expect(tracker.verdict(now: Self.at(5)) == .timedOut(["ghost: no such peer heard"]))
    }

    @Test("a forged receipt, or one replayed from an earlier offer, does not count and fails the target")
    func forgedAndReplayed() throws {
        var tracker = Self.tracker(.named(["alpha", "beta"]))
        _ = tracker.heard([Self.peer(1, "alpha"), Self.peer(2, "beta")], now: Self.at(0))
        let alpha = PeerID(high: 0, low: 1)
        let beta = PeerID(high: 0, low: 2)
        let alphaOffer = try #require(Self.offer(&tracker, to: alpha, number: 1, at: 0))
        tracker.answered(alpha, refusal: nil, now: Self.at(0))
        let forged = DeliveryReceipt(signing: alphaOffer, with: F.otherKey).tag
        let forgedCounts = tracker.receipt(alpha, tag: forged, now: Self.at(1))
        #expect(!forgedCounts)
        #expect(tracker.targets[alpha]?.phase == .forgedReceipt)
        #expect(tracker.targets[alpha]?.receipts.isEmpty == true)
        // Beta's first offer is interrupted; a receipt for it is no receipt for the next one.
        let first = try #require(Self.offer(&tracker, to: beta, number: 2, at: 0))
        tracker.connectionEnded(beta, reason: "connection reset", now: Self.at(1))
        let second = try #require(Self.offer(&tracker, to: beta, number: 3, at: 2))
        #expect(first.number != second.number)
        tracker.answered(beta, refusal: nil, now: Self.at(2))
        let replayed = DeliveryReceipt(signing: first, with: F.key).tag
        let replayCounts = tracker.receipt(beta, tag: replayed, now: Self.at(3))
        #expect(!replayCounts)
        guard case .failed(let lines) = tracker.verdict(now: Self.at(3)) else {
            Issue.record("forged receipts should fail the send")
            return
        }
        #expect(lines.count == 2 && lines.allSatisfy { $0.contains("does not verify") })
    }

    @Test("a lost connection is offered again after the retry delay, and the target resumes")
    func retry() throws {
        var tracker = Self.tracker(.all)
        let peer = try #require(tracker.heard([Self.peer(1, "alpha")], now: Self.at(0)).first)
        _ = try #require(Self.offer(&tracker, to: peer.id, number: 1, at: 0))
        tracker.answered(peer.id, refusal: nil, now: Self.at(0.1))
        tracker.progressed(peer.id, bytes: 3 << 20, now: Self.at(0.5))
        tracker.connectionEnded(peer.id, reason: "the peer closed the connection", now: Self.at(1))
        guard case .interrupted = tracker.targets[peer.id]?.phase else {
            Issue.record("expected interrupted")
            return
        }
        let early = tracker.nextStep(for: peer.id, number: Self.number(2), now: Self.at(1.5))
        #expect(early == .wait(until: Self.at(2)))
        let again = try #require(Self.offer(&tracker, to: peer.id, number: 2, at: 2))
        let verified = Self.verify(&tracker, again, at: 3)
        #expect(verified)
        #expect(tracker.verdict(now: Self.at(3)) == .delivered)
    }

    @Test("a target busy with the item for an earlier offer is offered it again after the retry delay")
    func busyTarget() throws {
        var tracker = Self.tracker(.named(["alpha"]))
        let peer = try #require(tracker.heard([Self.peer(1, "alpha")], now: Self.at(0)).first)
        _ = try #require(Self.offer(&tracker, to: peer.id, number: 1, at: 0))
        tracker.answered(peer.id, refusal: DeliveryRefusal(.busy, "is fetching image.iso"), now: Self.at(0.5))
        #expect(tracker.verdict(now: Self.at(0.5)) == .going)
        let early = tracker.nextStep(for: peer.id, number: Self.number(2), now: Self.at(1))
        #expect(early == .wait(until: Self.at(1.5)))
        let again = try #require(Self.offer(&tracker, to: peer.id, number: 2, at: 1.5))
        let verified = Self.verify(&tracker, again, at: 2)
        #expect(verified)
        #expect(tracker.verdict(now: Self.at(2)) == .delivered)
    }

    @Test("several items go one after the other; the share counts the verified ones")
    func severalItems() throws {
        let items = [F.item(1, name: "a.bin", size: 100), F.item(2, name: "b.bin", size: 300)]
        var tracker = Self.tracker(.named(["alpha"]), items: items)
        let peer = try #require(tracker.heard([Self.peer(1, "alpha")], now: Self.at(0)).first)
        let first = try #require(Self.offer(&tracker, to: peer.id, number: 1, at: 0))
        #expect(first.item == items[0])
        let firstVerified = Self.verify(&tracker, first, at: 1)
        #expect(firstVerified)
        #expect(tracker.targets[peer.id]?.phase == .waiting)
        #expect(tracker.share(of: try #require(tracker.targets[peer.id])) == 0.25)
        #expect(tracker.verdict(now: Self.at(1)) == .going)
        let second = try #require(Self.offer(&tracker, to: peer.id, number: 2, at: 1))
        #expect(second.item == items[1])
        tracker.answered(peer.id, refusal: nil, now: Self.at(1))
        tracker.progressed(peer.id, bytes: 150, now: Self.at(1.5))
        #expect(tracker.share(of: try #require(tracker.targets[peer.id])) == 0.625)
        #expect(tracker.verdict(now: Self.at(60)) == .timedOut(["alpha: missing b.bin (150 of 300 bytes): fetching"]))
        let late = tracker.nextStep(for: peer.id, number: Self.number(3), now: Self.at(60))
        #expect(late == .stop)
    }
}
