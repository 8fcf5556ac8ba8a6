import Testing

@testable import P2P

@Suite("DeliveryReceipt")
struct DeliveryReceiptTests {
    typealias F = DeliveryFixtures

    @Test("a receipt signed with the network key verifies for its own offer")
    func verifies() {
        let offer = F.offer()
        let receipt = DeliveryReceipt(signing: offer, with: F.key)
        #expect(receipt.tag.count == DeliveryReceipt.tagLength)
        #expect(receipt.isValid(with: F.key))
        #expect(DeliveryReceipt(offer: offer, tag: receipt.tag).isValid(with: F.key))
    }

    @Test("a receipt made with another key, or with a byte changed, is rejected")
    func forged() {
        let offer = F.offer()
        #expect(!DeliveryReceipt(signing: offer, with: F.otherKey).isValid(with: F.key))
        var tag = DeliveryReceipt(signing: offer, with: F.key).tag
        tag[5] ^= 0x01
        #expect(!DeliveryReceipt(offer: offer, tag: tag).isValid(with: F.key))
        #expect(!DeliveryReceipt(offer: offer, tag: Array(tag.prefix(16))).isValid(with: F.key))
        #expect(!DeliveryReceipt(offer: offer, tag: []).isValid(with: F.key))
    }

    @Test(
        "a receipt replayed for another offer number, target, sender, file, size or name is rejected",
        arguments: 0..<6
    )
    func replayed(change: Int) {
        let original = F.offer()
        let tag = DeliveryReceipt(signing: original, with: F.key).tag
        var other = original
        switch change {
        case 0: other.number = [UInt8](repeating: 2, count: DeliveryOffer.numberLength)
        case 1: other.target = PeerID(high: 0, low: 2)
        case 2: other.sender = PeerID(high: 0, low: 101)
        case 3: other.item = F.item(2)
        case 4: other.item.size += 1
        default: other.item.name = try! FileName("other.iso")
        }
        #expect(!DeliveryReceipt(offer: other, tag: tag).isValid(with: F.key))
    }

    @Test("the time the sender waits is not part of what a receipt proves")
    func waitIsNotCovered() {
        var offer = F.offer()
        let tag = DeliveryReceipt(signing: offer, with: F.key).tag
        offer.waitSeconds = 99
        #expect(DeliveryReceipt(offer: offer, tag: tag).isValid(with: F.key))
    }
}
