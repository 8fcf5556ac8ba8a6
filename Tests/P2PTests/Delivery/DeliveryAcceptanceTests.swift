import Testing

@testable import P2P

@Suite("DeliveryAcceptance")
struct DeliveryAcceptanceTests {
    typealias F = DeliveryFixtures

    static func acceptance(
        accepting: Bool = true,
        maximumBytes: Int64? = nil,
        keepFree: Int64 = 0,
        hasKey: Bool = true
    ) -> DeliveryAcceptance {
        DeliveryAcceptance(
            policy: DeliveryPolicy(accepting: accepting, maximumBytes: maximumBytes, keepFreeBytes: keepFree),
            me: F.target,
            hasKey: hasKey
        )
    }

    static func reason(_ decision: DeliveryAcceptance.Decision) -> DeliveryRefusal.Reason? {
        if case .refuse(let refusal) = decision { return refusal.reason }
        return nil
    }

    @Test("an accepting peer with a key and room takes the offer, and counts it against the quota")
    func accepts() {
        var acceptance = Self.acceptance(maximumBytes: 100 << 20)
        let decision = acceptance.decide(F.offer(), existing: .nothing, freeBytes: 1 << 30)
        #expect(decision == .fetch)
        #expect(acceptance.takenBytes == 10 << 20)
    }

    @Test("a peer without --accept refuses, whatever else holds")
    func notAccepting() {
        var acceptance = Self.acceptance(accepting: false)
        let decision = acceptance.decide(F.offer(), existing: .sameItem, freeBytes: 1 << 30)
        #expect(Self.reason(decision) == .notAccepting)
        #expect(acceptance.takenBytes == 0)
    }

    @Test("a peer without a network key refuses")
    func noKey() {
        var acceptance = Self.acceptance(hasKey: false)
        let decision = acceptance.decide(F.offer(), existing: .nothing, freeBytes: nil)
        #expect(Self.reason(decision) == .noKey)
    }

    @Test("an offer meant for another peer is refused")
    func notAddressed() {
        var acceptance = Self.acceptance()
        let decision = acceptance.decide(
            F.offer(target: PeerID(high: 9, low: 9)),
            existing: .nothing,
            freeBytes: nil
        )
        #expect(Self.reason(decision) == .notAddressed)
    }

    @Test("the same file already here is done at once; a different one at the name is refused with what it is")
    func existing() {
        var acceptance = Self.acceptance()
        let same = acceptance.decide(F.offer(), existing: .sameItem, freeBytes: 0)
        #expect(same == .alreadyHere)
        let different = acceptance.decide(
            F.offer(),
            existing: .different("downloads/image.iso holds another file"),
            freeBytes: 1 << 30
        )
        guard case .refuse(let refusal) = different else {
            Issue.record("expected a refusal, got \(different)")
            return
        }
        #expect(refusal.reason == .fileExists)
        #expect(refusal.message.contains("downloads/image.iso holds another file"))
        #expect(acceptance.takenBytes == 0)
    }

    @Test("the quota counts every delivery taken, once each, and refuses the one that would pass it")
    func quota() {
        var acceptance = Self.acceptance(maximumBytes: 25 << 20)
        let first = acceptance.decide(F.offer(F.item(1)), existing: .nothing, freeBytes: nil)
        let second = acceptance.decide(F.offer(F.item(2)), existing: .nothing, freeBytes: nil)
        // Offered again once its first fetch ended (a resumed delivery): not counted twice.
        acceptance.fetchEnded(F.item(1).id)
        let again = acceptance.decide(F.offer(F.item(1), number: 2), existing: .nothing, freeBytes: nil)
        let third = acceptance.decide(F.offer(F.item(3)), existing: .nothing, freeBytes: nil)
        #expect(first == .fetch)
        #expect(second == .fetch)
        #expect(again == .fetch)
        #expect(Self.reason(third) == .quota)
        #expect(acceptance.takenBytes == 20 << 20)
    }

    @Test("free space: the item and the room kept free must fit, else it is refused saying how much")
    func freeSpace() {
        var acceptance = Self.acceptance(keepFree: 5 << 20)
        let fits = acceptance.decide(F.offer(F.item(1)), existing: .nothing, freeBytes: 15 << 20)
        let tooBig = acceptance.decide(F.offer(F.item(2)), existing: .nothing, freeBytes: (15 << 20) - 1)
        #expect(fits == .fetch)
        guard case .refuse(let refusal) = tooBig else {
            Issue.record("expected a refusal, got \(tooBig)")
            return
        }
        #expect(refusal.reason == .diskSpace)
        #expect(refusal.message.contains("\(15 << 20 - 1) free"))
        // Unknown free space is not a reason to refuse.
        let unknown = acceptance.decide(F.offer(F.item(3)), existing: .nothing, freeBytes: nil)
        #expect(unknown == .fetch)
    }

    @Test("a folder with a pack needs room for its small files twice: the pack and the files cut from it")
    func freeSpaceWithPack() {
        var acceptance = Self.acceptance(keepFree: 0)
        let plain = F.item(4, name: "build", size: 10 << 20)
        var packed = F.item(5, name: "build2", size: 10 << 20)
        packed.kind = .collection
        packed.pack = FileID(bytes: [UInt8](repeating: 9, count: 32))!
        #expect(acceptance.decide(F.offer(plain), existing: .nothing, freeBytes: 15 << 20) == .fetch)
        let refused = acceptance.decide(F.offer(packed), existing: .nothing, freeBytes: 15 << 20)
        guard case .refuse(let refusal) = refused else {
            Issue.record("expected a refusal, got \(refused)")
            return
        }
        #expect(refusal.reason == .diskSpace && refusal.message.contains("\(20 << 20) bytes with its pack"))
        #expect(acceptance.decide(F.offer(packed), existing: .nothing, freeBytes: 20 << 20) == .fetch)
    }

    @Test("an item being fetched is refused as busy to a second offer, and taken again once that fetch ends")
    func oneFetchPerItem() {
        var acceptance = Self.acceptance(maximumBytes: 15 << 20)
        let first = acceptance.decide(F.offer(number: 1), existing: .nothing, freeBytes: nil)
        let second = acceptance.decide(F.offer(number: 2), existing: .nothing, freeBytes: nil)
        #expect(first == .fetch)
        #expect(Self.reason(second) == .busy)
        #expect(acceptance.fetching == [F.item().id])
        acceptance.fetchEnded(F.item().id)
        // The first fetch stopped short (its sender went away): the next offer resumes it,
        // and the quota counts the item once.
        let third = acceptance.decide(F.offer(number: 3), existing: .nothing, freeBytes: nil)
        #expect(third == .fetch)
        #expect(acceptance.takenBytes == 10 << 20)
    }

    @Test("turning acceptance off refuses what would have been taken")
    func turnedOff() {
        var acceptance = Self.acceptance()
        acceptance.policy.accepting = false
        let decision = acceptance.decide(F.offer(), existing: .nothing, freeBytes: nil)
        #expect(Self.reason(decision) == .notAccepting)
    }
}
