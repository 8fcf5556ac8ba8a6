import Crypto
import Foundation

/// A target's proof that it holds a delivered item, verified whole (frame
/// `delivery-receipt`): HMAC-SHA-256, under a key derived from the network key, of the offer
/// number, the sender and target ids, and the item's kind, id, size and name.
///
/// Only a peer with the network key can make one, and it covers the offer's fresh number
/// and both ids, so a receipt cannot stand for another delivery, another target or another
/// sender.
public struct DeliveryReceipt: Sendable, Hashable {
    /// Bytes of the tag.
    public static let tagLength = 32

    /// The offer it answers.
    public var offer: DeliveryOffer
    /// The HMAC tag.
    public var tag: [UInt8]

    /// The receipt for `offer`, made by its target.
    /// - Parameters:
    ///   - offer: the offer, as the target received it.
    ///   - key: the network key.
    public init(signing offer: DeliveryOffer, with key: NetworkKey) {
        self.offer = offer
        self.tag = Array(HMAC<SHA256>.authenticationCode(for: Self.message(offer), using: key.receiptKey))
    }

    /// A receipt as received, to be checked with `isValid(with:)`.
    public init(offer: DeliveryOffer, tag: [UInt8]) {
        self.offer = offer
        self.tag = tag
    }

    /// Whether the tag authenticates this offer under `key`, compared in constant time.
    public func isValid(with key: NetworkKey) -> Bool {
        self.tag.count == Self.tagLength
            && HMAC<SHA256>.isValidAuthenticationCode(
                self.tag,
                authenticating: Self.message(self.offer),
                using: key.receiptKey
            )
    }

    /// What the tag covers. The wait is left out: it says nothing about what was delivered.
    static func message(_ offer: DeliveryOffer) -> [UInt8] {
        var bytes = Array("p2p delivery receipt v1".utf8)
        bytes += offer.number
        for id in [offer.sender, offer.target] {
            withUnsafeBytes(of: id.high.bigEndian) { bytes += $0 }
            withUnsafeBytes(of: id.low.bigEndian) { bytes += $0 }
        }
        bytes.append(offer.item.kind.rawValue)
        bytes += offer.item.id.bytes
        withUnsafeBytes(of: offer.item.size.bigEndian) { bytes += $0 }
        let name = Array(offer.item.name.value.utf8)
        withUnsafeBytes(of: UInt16(name.count).bigEndian) { bytes += $0 }
        bytes += name
        return bytes
    }

    /// The tag in hex, for `send --json`.
    public var tagHex: String { self.tag.map { String(format: "%02x", $0) }.joined() }
}
