import Foundation

/// Something the event stream (`/api/events`) tells its subscribers.
public enum GatewayEvent: Sendable, Equatable {
    /// A download started, moved on, or ended.
    case transfer(TransferInfo)
    /// A peer joined the swarm, left it, or fell silent.
    case peer(PeerChange)

    /// A change in the swarm's peers.
    public struct PeerChange: Sendable, Equatable, Codable {
        /// `joined`, `left` or `expired`.
        public var change: String
        /// The peer's id.
        public var id: String
        /// Its transfer address.
        public var address: String
    }

    /// The event in server-sent-events framing: an `event:` line naming the kind, one
    /// `data:` line of JSON (JSON has no raw line breaks), and a blank line.
    public var serverSentEvent: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let (kind, data): (String, Data?) =
            switch self {
            case .transfer(let info): ("transfer", try? encoder.encode(info))
            case .peer(let change): ("peer", try? encoder.encode(change))
            }
        return "event: \(kind)\ndata: \(String(decoding: data ?? Data("{}".utf8), as: UTF8.self))\n\n"
    }
}
