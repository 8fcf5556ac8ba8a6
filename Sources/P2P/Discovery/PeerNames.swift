/// How peers are named to people, and how a name people type finds a peer (SPEC §10).
///
/// Names are chosen by each peer and need not be unique, so a name shared by several of the
/// peers shown is written `name#<first 8 hex digits of the id>`, and a peer without a name
/// by its short id alone. A peer is found by its name, by that written form, or by the
/// start of its id; a name that fits several peers is reported with the forms that tell
/// them apart, never settled by a guess.
public struct PeerNames: Sendable {
    /// The label of each peer, by id.
    public let labels: [PeerID: String]
    private let peers: [KnownPeer]

    /// Labels for a set of peers shown together.
    /// - Parameter peers: the peers.
    public init(_ peers: [KnownPeer]) {
        self.peers = peers
        var counts: [PeerName: Int] = [:]
        for peer in peers { if let name = peer.name { counts[name, default: 0] += 1 } }
        var labels: [PeerID: String] = [:]
        for peer in peers {
            guard let name = peer.name else {
                labels[peer.id] = peer.id.short
                continue
            }
            labels[peer.id] = counts[name, default: 0] > 1 ? "\(name.value)#\(peer.id.short)" : name.value
        }
        self.labels = labels
    }

    /// The label of a peer: its name, made unique if needed, or its short id.
    public func label(_ id: PeerID) -> String {
        self.labels[id] ?? id.short
    }

    /// The peer that `text` names: its label, its name, or hex digits its id starts with.
    /// - Parameter text: what the user typed.
    /// - Returns: the one peer meant.
    /// - Throws: `P2PError` (`notFound`, or `ambiguous` listing the labels to choose from).
    public func find(_ text: String) throws -> KnownPeer {
        if let exact = self.peers.first(where: { self.labels[$0.id] == text }) { return exact }
        var matches = self.peers.filter { $0.name?.value == text }
        let hex = text.lowercased()
        if matches.isEmpty, !hex.isEmpty, hex.count <= 32, hex.allSatisfy(\.isHexDigit) {
            matches = self.peers.filter { $0.id.description.hasPrefix(hex) }
        }
        guard let only = matches.first else {
            throw P2PError(code: .notFound, "no peer named \(FileName.quoted(text))")
        }
        guard matches.count == 1 else {
            let choices = matches.map { self.label($0.id) }.sorted().joined(separator: ", ")
            throw P2PError(
                code: .ambiguous,
                "\(FileName.quoted(text)) names \(matches.count) peers: \(choices); pick one"
            )
        }
        return only
    }
}
