/// Which connections the transfer server takes, and which it lets go to make room: the
/// policy alone, with time passed in (no sockets, locks or clocks inside).
///
/// Each address may hold `maximumPerAddress` connections; a newcomer over that is refused.
/// When all `maximumConnections` are taken, a newcomer is not refused: the open connection
/// that has done least is shed in its favour: the one with the fewest complete frames, and
/// of those the one idle longest. So a flood that holds the table with connections that
/// send nothing (or a byte now and then, which is no frame) cannot lock out an honest
/// peer, whose connections send requests at once and so are not the least useful.
struct ConnectionAdmission<ID: Hashable & Sendable>: Sendable {
    /// What to do with a newcomer.
    enum Decision: Equatable, Sendable {
        /// Take it; there is room.
        case admit
        /// Take it, and close the connection given to make room.
        case admitShedding(ID)
        /// Close it: its address holds as many connections as it may.
        case refuse
    }

    /// What one open connection has done.
    struct Record: Sendable {
        /// The remote IP address.
        let address: String
        /// Frames received whole.
        var completeFrames = 0
        /// When it was opened, or last completed a frame.
        var lastProgress: ContinuousClock.Instant
    }

    /// Connections open at once, from everyone.
    let maximumConnections: Int
    /// Connections open at once from one address.
    let maximumPerAddress: Int
    private(set) var open: [ID: Record] = [:]
    private var perAddress: [String: Int] = [:]
    /// Newcomers refused so far (their address was at its limit).
    private(set) var refused = 0
    /// Open connections shed so far to make room for newcomers.
    private(set) var shed = 0

    /// Creates an empty table.
    /// - Parameters:
    ///   - maximumConnections: connections at once, from everyone (at least 1).
    ///   - maximumPerAddress: connections at once from one address (at least 1).
    init(maximumConnections: Int, maximumPerAddress: Int) {
        self.maximumConnections = max(1, maximumConnections)
        self.maximumPerAddress = max(1, maximumPerAddress)
    }

    /// Connections open now.
    var count: Int { self.open.count }

    /// Decides on a newcomer, and takes it into the table unless it is refused.
    /// - Parameters:
    ///   - id: the newcomer.
    ///   - address: its IP address.
    ///   - now: the time.
    /// - Returns: whether to take it, and whom to shed for it.
    mutating func admit(_ id: ID, from address: String, at now: ContinuousClock.Instant) -> Decision {
        guard self.perAddress[address, default: 0] < self.maximumPerAddress else {
            self.refused += 1
            return .refuse
        }
        var decision = Decision.admit
        if self.open.count >= self.maximumConnections, let victim = self.leastUseful() {
            self.remove(victim)
            self.shed += 1
            decision = .admitShedding(victim)
        }
        self.open[id] = Record(address: address, lastProgress: now)
        self.perAddress[address, default: 0] += 1
        return decision
    }

    /// Counts frames a connection received whole; a connection not in the table is ignored.
    /// - Parameters:
    ///   - frames: how many.
    ///   - id: the connection.
    ///   - now: the time.
    mutating func recordFrames(_ frames: Int, of id: ID, at now: ContinuousClock.Instant) {
        guard frames > 0, var record = self.open[id] else { return }
        record.completeFrames += frames
        record.lastProgress = max(record.lastProgress, now)
        self.open[id] = record
    }

    /// Takes a closed connection out of the table; one not in it (shed already) is ignored.
    mutating func remove(_ id: ID) {
        guard let record = self.open.removeValue(forKey: id) else { return }
        let left = self.perAddress[record.address, default: 1] - 1
        self.perAddress[record.address] = left > 0 ? left : nil
    }

    /// The connection that has done least: fewest complete frames, then idle longest.
    private func leastUseful() -> ID? {
        self.open.min { first, second in
            if first.value.completeFrames != second.value.completeFrames {
                return first.value.completeFrames < second.value.completeFrames
            }
            return first.value.lastProgress < second.value.lastProgress
        }?.key
    }
}
