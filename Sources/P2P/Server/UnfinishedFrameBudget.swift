/// The bytes of unfinished frames the transfer server holds across all its connections:
/// the policy alone (no sockets, locks or tasks inside).
///
/// A frame may declare up to 16 MiB, and its bytes are held until the last one arrives; so
/// without a shared bound, connections that each send most of a large frame and then
/// trickle hold gigabytes between them. Each connection holds its first
/// `freeBytesPerConnection` of an unfinished frame outside the budget, so every request
/// (they are a few hundred bytes; a work request's bitmap is at most 8 KiB) always fits and
/// downloads from this peer never wait on it; beyond that a connection takes from the
/// shared `capacity`. A connection whose frame would take more than is left is to be
/// closed, not paused: pausing it would leave both its bytes and the flood's held until
/// the flood's frames time out, while closing frees its bytes at once. Only large frames
/// sent to a server take from the budget (pushed chunks and manifests, which the
/// distributor sends again next round); the server's default (64 MiB,
/// `TransferServer.Limits`) takes 256 pushed 256 KiB chunks at once.
struct UnfinishedFrameBudget<ID: Hashable & Sendable>: Sendable {
    /// The bytes all connections together may hold beyond their free bytes.
    let capacity: Int
    /// The bytes of an unfinished frame each connection holds outside the budget.
    let freeBytesPerConnection: Int
    /// What each connection takes from the budget now.
    private var taken: [ID: Int] = [:]
    /// The bytes taken from the budget now, by all connections.
    private(set) var used = 0
    /// Connections that would have gone over the budget so far.
    private(set) var overruns = 0

    /// Creates an empty budget.
    /// - Parameters:
    ///   - capacity: bytes all connections together may hold beyond their free bytes.
    ///   - freeBytesPerConnection: bytes each connection holds outside the budget.
    init(capacity: Int, freeBytesPerConnection: Int) {
        self.capacity = max(0, capacity)
        self.freeBytesPerConnection = max(0, freeBytesPerConnection)
    }

    /// Records that a connection now holds `bytes` of an unfinished frame (zero once its
    /// frames are whole).
    /// - Parameters:
    ///   - bytes: what the connection holds now.
    ///   - id: the connection.
    /// - Returns: `true` if it fits; `false` if it would go over the budget, in which case
    ///   the connection's share is given back (it is to be closed).
    mutating func hold(_ bytes: Int, for id: ID) -> Bool {
        let wanted = max(0, bytes - self.freeBytesPerConnection)
        let before = self.taken[id, default: 0]
        guard self.used - before + wanted <= self.capacity else {
            self.release(id)
            self.overruns += 1
            return false
        }
        self.used += wanted - before
        self.taken[id] = wanted > 0 ? wanted : nil
        return true
    }

    /// Gives back all a connection took (it closed).
    mutating func release(_ id: ID) {
        self.used -= self.taken.removeValue(forKey: id) ?? 0
    }
}
