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

    /// A line about peers heard whose announcements fail the key check, if there were any:
    /// a wrong or missing `--secret` otherwise looks like an empty network.
    static func foreignKeyNote(_ peer: Peer) -> String? {
        let count = peer.discoveryStatistics.foreignKeySenders
        guard count > 0 else { return nil }
        let whose = peer.configuration.networkKey == nil ? "a network key" : "another network key"
        return "heard \(Format.count(count, "peer")) that \(count == 1 ? "uses" : "use") \(whose); check --secret"
    }

    /// What a listing prints for people: `text`, then the note on other keys if any.
    static func withForeignKeyNote(_ text: String, of peer: Peer) -> String {
        guard let note = Self.foreignKeyNote(peer) else { return text }
        return text + "\n" + note
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
