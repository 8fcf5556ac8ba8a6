import NIOCore

@testable import P2P

extension KnownPeer {
    /// A serving peer with id `(0, low)` at `address`, heard just now and not about to
    /// expire: what discovery would have put in the table.
    static func fixture(_ low: UInt64, at address: SocketAddress) -> KnownPeer {
        KnownPeer(
            id: PeerID(high: 0, low: low),
            transferAddress: address,
            discoveryAddress: address,
            lastSeen: .now(),
            expires: .now() + .seconds(6),
            isObserver: false
        )
    }
}
