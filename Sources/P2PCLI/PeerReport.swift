import NIOCore
import P2P

/// One peer as `peers --json` prints it.
struct PeerReport: Codable, Equatable {
    /// The peer's id, 32 hex digits.
    var id: String
    /// Its IP address.
    var address: String
    /// Its transfer port.
    var port: Int

    init(_ peer: KnownPeer) {
        self.id = peer.id.description
        self.address = peer.transferAddress.ipAddress ?? "?"
        self.port = peer.transferAddress.port ?? 0
    }

    /// A plain table of peers, or a line saying there are none.
    static func table(_ peers: [KnownPeer]) -> String {
        guard !peers.isEmpty else { return "no peers found" }
        var lines = ["PEER ID                           ADDRESS"]
        for peer in peers {
            lines.append("\(peer.id)  \(peer.transferAddressDescription)")
        }
        return lines.joined(separator: "\n")
    }
}
