@testable import P2P

/// Offers, items and keys for the delivery tests.
enum DeliveryFixtures {
    static let key = try! NetworkKey(secret: "correct horse battery")
    static let otherKey = try! NetworkKey(secret: "wrong horse battery")
    static let sender = PeerID(high: 0, low: 100)
    static let target = PeerID(high: 0, low: 1)

    static func item(_ seed: UInt8 = 1, name: String = "image.iso", size: UInt64 = 10 << 20) -> DeliveryItem {
        DeliveryItem(
            id: FileID(bytes: [UInt8](repeating: seed, count: 32))!,
            name: try! FileName(name),
            size: size
        )
    }

    static func offer(
        _ item: DeliveryItem = Self.item(),
        number: UInt8 = 1,
        target: PeerID = Self.target
    ) -> DeliveryOffer {
        DeliveryOffer(
            number: [UInt8](repeating: number, count: DeliveryOffer.numberLength),
            sender: Self.sender,
            target: target,
            item: item
        )
    }
}
