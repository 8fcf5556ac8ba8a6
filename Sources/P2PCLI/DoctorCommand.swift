import ArgumentParser
import NIOCore
import P2P
import ServiceLifecycle
import Synchronization

/// `p2p doctor`: listen as an observer, then say what works and what does not between this
/// host and the swarm, one line per check, each failure with what to do.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check interfaces, broadcast, peers, keys, transfer ports both ways; say what to fix.",
        discussion: "Exits 1 when a check fails."
    )

    @Option(help: "Seconds to listen before checking.")
    var wait: Double = 2

    @Flag(help: "Print the checks as a JSON array of {name, status, finding, advice}.")
    var json = false

    @Flag(help: "Also measure, for two seconds each, how fast every answering peer serves chunks.")
    var speed = false

    @OptionGroup var options: CommonOptions

    func validate() throws {
        guard self.wait >= 0.1 && self.wait <= 600 else {
            throw ValidationError("--wait must be between 0.1 and 600 seconds")
        }
    }

    func run() async throws {
        let (peer, logger) = try await PeerRunner.makePeer(self.options, observer: true)
        let examination = Examination(
            peer: peer,
            interfaceNames: self.options.interfaces,
            transferPort: self.options.port,
            discoveryPort: self.options.discoveryPort,
            staticPeers: self.options.peers.count,
            wait: self.wait,
            json: self.json,
            speed: self.speed
        )
        try await PeerRunner.run([peer], finishing: [examination], logger: logger)
        if examination.verdict.failed.withLock({ $0 }) { throw ExitCode.failure }
    }

    /// Whether a check failed, for the exit code.
    final class Verdict: Sendable {
        let failed = Mutex(false)
    }

    /// Listens, gathers what the peer saw, prints the checks, and returns (which ends the
    /// service group).
    private struct Examination: Service {
        let peer: Peer
        let interfaceNames: [String]
        /// The port peers are asked to connect back to: the one `serve` would use here.
        let transferPort: Int
        let discoveryPort: Int
        let staticPeers: Int
        let wait: Double
        let json: Bool
        let speed: Bool
        let verdict = Verdict()

        func run() async throws {
            let started = ContinuousClock.now
            guard await sleepUnlessShuttingDown(.milliseconds(Int64(self.wait * 1000))) else { return }
            let elapsed = ContinuousClock.now - started
            var networks: [NetworkScope.Network] = []
            var interfaceError: String? = nil
            do {
                networks = try NetworkScope.current(interfaceNames: self.interfaceNames).networks
            } catch {
                interfaceError = "\(error)"
            }
            let heard = self.peer.table.servingPeers()
            // One inventory request to each, at once: an answer shows its transfer port works.
            let answered = Set(await self.peer.swarmInventories().map(\.0.id))
            let reachable = heard.filter { answered.contains($0.id) }
            let connectBacks = await self.peer.askConnectBack(of: reachable, to: self.transferPort)
            let statistics = self.peer.discoveryStatistics
            var speeds: [SwarmDiagnosis.Speed]? = nil
            if self.speed {
                // One at a time: peers measured together would share this host's link.
                var measured: [SwarmDiagnosis.Speed] = []
                for known in heard where answered.contains(known.id) {
                    do {
                        let rate = try await self.peer.measureThroughput(of: known)
                        measured.append(SwarmDiagnosis.Speed(id: known.id, bytesPerSecond: rate))
                    } catch {
                        measured.append(SwarmDiagnosis.Speed(id: known.id, bytesPerSecond: nil, problem: "\(error)"))
                    }
                }
                speeds = measured
            }
            let seen = SwarmDiagnosis.Observations(
                networks: networks,
                interfaceError: interfaceError,
                discoveryPort: self.discoveryPort,
                listenedSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                ownEchoes: statistics.ownEchoes,
                sendFailures: statistics.sendFailures,
                peers: heard.map {
                    SwarmDiagnosis.Sighting(
                        id: $0.id,
                        address: $0.transferAddressDescription,
                        answered: answered.contains($0.id),
                        connectBack: connectBacks.answers[$0.id]
                    )
                },
                foreignKeySenders: statistics.foreignKeySenders,
                hasKey: self.peer.configuration.networkKey != nil,
                staticPeers: self.staticPeers,
                connectBackPort: connectBacks.port,
                speeds: speeds
            )
            let checks = SwarmDiagnosis.checks(seen)
            self.verdict.failed.withLock { $0 = checks.contains { $0.status == .failed } }
            Console.out(self.json ? Console.json(checks) : checks.map(\.line).joined(separator: "\n"))
        }
    }
}
