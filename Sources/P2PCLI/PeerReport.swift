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
    /// Its device name as it announces it, if any.
    var name: String?
    /// How listings show it: the name, with the short id when several peers share it.
    var label: String

    init(_ peer: KnownPeer, names: PeerNames) {
        self.id = peer.id.description
        self.address = peer.transferAddress.ipAddress ?? "?"
        self.port = peer.transferAddress.port ?? 0
        self.name = peer.name?.value
        self.label = names.label(peer.id)
    }

    /// The peers as `--json` prints them.
    static func reports(_ peers: [KnownPeer]) -> [PeerReport] {
        let names = PeerNames(peers)
        return peers.map { PeerReport($0, names: names) }
    }

    /// The peers a command line names (`NAME`, `NAME#ID`, or id digits), or all of them.
    /// - Throws: `P2PError` when a name fits no peer, or several.
    static func selected(_ peers: [KnownPeer], named: [String]) throws -> [KnownPeer] {
        guard !named.isEmpty else { return peers }
        let names = PeerNames(peers)
        return try named.map { try names.find($0) }
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
        let names = PeerNames(peers)
        let rows = peers.sorted { (names.label($0.id), $0.id) < (names.label($1.id), $1.id) }.map { peer in
            [names.label(peer.id), peer.id.description, peer.transferAddressDescription]
        }
        return Format.table(["NAME", "PEER ID", "ADDRESS"], rows)
    }
}
