import Logging
import NIOCore
import Synchronization

/// The transfer server's open connections and the bytes of unfinished frames they hold,
/// shared by all of them: it keeps the admission policy (`ConnectionAdmission`) and the
/// shared budget (`UnfinishedFrameBudget`) in one lock, and carries out what they decide:
/// closes the connection shed, and logs refusals, sheddings and overruns (one line a second
/// at most of each, with how many there were).
final class ServedConnections: Sendable {
    /// A connection is known by its channel's identity while it is open.
    typealias ID = ObjectIdentifier

    private struct State {
        var admission: ConnectionAdmission<ID>
        var budget: UnfinishedFrameBudget<ID>
        /// The channels admitted, so that one can be shed.
        var channels: [ID: any Channel] = [:]
        var refusals = LogThrottle()
        var sheddings = LogThrottle()
        var overruns = LogThrottle()
    }

    /// Counts of events since the last line about them, so that a flood of connections is
    /// not a flood of log lines.
    private struct LogThrottle {
        var sinceLastLine = 0
        var lastLine: ContinuousClock.Instant? = nil

        /// Counts an event. Returns how many to report now, or zero to stay quiet.
        mutating func count(at now: ContinuousClock.Instant) -> Int {
            self.sinceLastLine += 1
            if let last = self.lastLine, now - last < ServedConnections.logInterval { return 0 }
            self.lastLine = now
            defer { self.sinceLastLine = 0 }
            return self.sinceLastLine
        }
    }

    /// At most one line per this interval about each kind of event.
    static let logInterval: Duration = .seconds(1)

    private let state: Mutex<State>
    private let limits: TransferServer.Limits
    private let logger: Logger

    init(limits: TransferServer.Limits, logger: Logger) {
        self.limits = limits
        self.logger = logger
        self.state = Mutex(
            State(
                admission: ConnectionAdmission(
                    maximumConnections: limits.maximumConnections,
                    maximumPerAddress: limits.maximumConnectionsPerAddress
                ),
                budget: UnfinishedFrameBudget(
                    capacity: limits.unfinishedFrameBudget,
                    freeBytesPerConnection: TransferServer.Limits.unbudgetedFrameBytesPerConnection
                )
            )
        )
    }

    /// The counters now.
    var statistics: TransferServer.ConnectionStatistics {
        self.state.withLock { state in
            TransferServer.ConnectionStatistics(
                open: state.admission.count,
                refused: state.admission.refused,
                shed: state.admission.shed,
                closedOverBudget: state.budget.overruns,
                unfinishedFrameBytes: state.budget.used
            )
        }
    }

    /// Admits a new connection or refuses it; closes the connection shed to make room.
    /// - Returns: whether to serve `channel`; if not, close it.
    func admit(_ channel: any Channel) -> Bool {
        let address = channel.remoteAddress?.ipAddress ?? "?"
        let now = ContinuousClock.now
        let (decision, shed, toLog) = self.state.withLock {
            state -> (ConnectionAdmission<ID>.Decision, (any Channel)?, Int) in
            let decision = state.admission.admit(ID(channel), from: address, at: now)
            switch decision {
            case .admit:
                state.channels[ID(channel)] = channel
                return (decision, nil, 0)
            case .admitShedding(let victim):
                state.channels[ID(channel)] = channel
                state.budget.release(victim)
                return (decision, state.channels.removeValue(forKey: victim), state.sheddings.count(at: now))
            case .refuse:
                return (decision, nil, state.refusals.count(at: now))
            }
        }
        switch decision {
        case .admit:
            return true
        case .admitShedding:
            shed?.close(promise: nil)
            if toLog > 0 {
                self.logger.info(
                    "shed transfer connections that had done least, to admit newcomers",
                    metadata: [
                        "connection.count": "\(toLog)",
                        "shed.address": "\(shed?.remoteAddress.map { "\($0)" } ?? "?")",
                        "peer.address": "\(address)",
                        "limits": "\(self.limits.maximumConnections) in all",
                    ]
                )
            }
            return true
        case .refuse:
            if toLog > 0 {
                self.logger.info(
                    "refused transfer connections over the limit",
                    metadata: [
                        "connection.count": "\(toLog)",
                        "peer.address": "\(address)",
                        "limits": "\(self.limits.maximumConnectionsPerAddress) per address",
                    ]
                )
            }
            return false
        }
    }

    /// Forgets a closed connection.
    func remove(_ channel: any Channel) {
        self.state.withLock { state in
            state.admission.remove(ID(channel))
            state.budget.release(ID(channel))
            state.channels[ID(channel)] = nil
        }
    }

    /// Counts frames a connection received whole.
    func recordFrames(_ frames: Int, of id: ID, at now: ContinuousClock.Instant) {
        self.state.withLock { $0.admission.recordFrames(frames, of: id, at: now) }
    }

    /// Records the bytes of an unfinished frame a connection holds now.
    /// - Returns: whether they fit the shared budget; if not, close the connection.
    func holdUnfinishedFrame(_ bytes: Int, of id: ID, remote: SocketAddress?) -> Bool {
        let now = ContinuousClock.now
        let (fits, toLog, used) = self.state.withLock { state -> (Bool, Int, Int) in
            let fits = state.budget.hold(bytes, for: id)
            return (fits, fits ? 0 : state.overruns.count(at: now), state.budget.used)
        }
        if toLog > 0 {
            self.logger.info(
                "closed transfer connections whose unfinished frames would go over the shared budget",
                metadata: [
                    "connection.count": "\(toLog)",
                    "peer.address": "\(remote.map { "\($0)" } ?? "?")",
                    "held.bytes": "\(bytes)",
                    "budget": "\(used) of \(self.limits.unfinishedFrameBudget) bytes taken",
                ]
            )
        }
        return fits
    }

    /// Gives back what a closing connection held of the budget.
    func releaseUnfinishedFrame(of id: ID) {
        self.state.withLock { $0.budget.release(id) }
    }
}
