/// What `p2p doctor` makes of what a peer saw while it listened: one check per question a
/// person asks when peers cannot see each other, each failure with what to do about it.
/// A value: the command gathers the observations, this decides.
public enum SwarmDiagnosis {
    /// What a peer saw while it listened.
    public struct Observations: Sendable, Equatable {
        /// The IPv4 networks in scope (after `--interface`).
        public var networks: [NetworkScope.Network]
        /// Why the interfaces could not be listed, if they could not.
        public var interfaceError: String?
        /// The discovery port.
        public var discoveryPort: Int
        /// Seconds it listened.
        public var listenedSeconds: Double
        /// Its own broadcasts heard back.
        public var ownEchoes: Int
        /// Announcements that failed to send.
        public var sendFailures: Int
        /// The peers heard that serve transfers.
        public var peers: [Sighting]
        /// Distinct senders whose announcements failed the key check.
        public var foreignKeySenders: Int
        /// Whether this peer has a network key.
        public var hasKey: Bool
        /// How many `--peer` addresses were given.
        public var staticPeers: Int
        /// The transfer port peers were asked to connect back to, if they were.
        public var connectBackPort: Int?
        /// How fast each answering peer served, when measured (`--speed`).
        public var speeds: [Speed]?

        /// - Parameters: as the properties.
        public init(
            networks: [NetworkScope.Network],
            interfaceError: String? = nil,
            discoveryPort: Int,
            listenedSeconds: Double,
            ownEchoes: Int,
            sendFailures: Int = 0,
            peers: [Sighting],
            foreignKeySenders: Int,
            hasKey: Bool,
            staticPeers: Int = 0,
            connectBackPort: Int? = nil,
            speeds: [Speed]? = nil
        ) {
            self.connectBackPort = connectBackPort
            self.networks = networks
            self.interfaceError = interfaceError
            self.discoveryPort = discoveryPort
            self.listenedSeconds = listenedSeconds
            self.ownEchoes = ownEchoes
            self.sendFailures = sendFailures
            self.peers = peers
            self.foreignKeySenders = foreignKeySenders
            self.hasKey = hasKey
            self.staticPeers = staticPeers
            self.speeds = speeds
        }
    }

    /// How fast a peer served chunks in a short test.
    public struct Speed: Sendable, Equatable {
        /// The peer's id.
        public var id: PeerID
        /// Verified bytes per second; `nil` if it had nothing to send or the test failed.
        public var bytesPerSecond: Double?
        /// Why the test failed, if it did.
        public var problem: String?

        /// - Parameters: as the properties.
        public init(id: PeerID, bytesPerSecond: Double?, problem: String? = nil) {
            self.id = id
            self.bytesPerSecond = bytesPerSecond
            self.problem = problem
        }
    }

    /// A peer heard, and whether its transfer port answered.
    public struct Sighting: Sendable, Equatable {
        /// Its id.
        public var id: PeerID
        /// Its transfer address, `a.b.c.d:port`.
        public var address: String
        /// Whether it answered an inventory request on its transfer port.
        public var answered: Bool
        /// Whether its connection back to this host's transfer port was answered, and what
        /// happened; `nil` if it was not asked.
        public var connectBack: (reached: Bool, message: String)?

        /// - Parameters: as the properties.
        public init(id: PeerID, address: String, answered: Bool, connectBack: (reached: Bool, message: String)? = nil) {
            self.id = id
            self.address = address
            self.answered = answered
            self.connectBack = connectBack
        }

        public static func == (lhs: Sighting, rhs: Sighting) -> Bool {
            lhs.id == rhs.id && lhs.address == rhs.address && lhs.answered == rhs.answered
                && lhs.connectBack?.reached == rhs.connectBack?.reached
                && lhs.connectBack?.message == rhs.connectBack?.message
        }
    }

    /// One check's outcome.
    public struct Check: Sendable, Equatable, Codable {
        /// How it came out.
        public enum Status: String, Sendable, Codable {
            case ok
            case warning
            case failed
        }

        /// What was checked.
        public var name: String
        /// How it came out.
        public var status: Status
        /// What was found.
        public var finding: String
        /// What to do about it, when something is wrong.
        public var advice: String?

        /// The line `doctor` prints for people.
        public var line: String {
            let mark =
                switch self.status {
                case .ok: "ok  "
                case .warning: "warn"
                case .failed: "FAIL"
                }
            return "\(mark) \(self.name): \(self.finding)" + (self.advice.map { " — \($0)" } ?? "")
        }
    }

    /// The checks, in the order a person works through them; the connect-back check only
    /// when peers were asked, the throughput check only when speeds were measured.
    /// - Parameter seen: what the peer saw.
    /// - Returns: one check per question.
    public static func checks(_ seen: Observations) -> [Check] {
        [
            Self.interfaces(seen), Self.echo(seen), Self.peers(seen), Self.keys(seen), Self.transferPorts(seen),
        ] + (seen.connectBackPort.map { [Self.connectBack(seen, port: $0)] } ?? [])
            + (seen.speeds.map { [Self.throughput($0)] } ?? [])
    }

    private static func connectBack(_ seen: Observations, port: Int) -> Check {
        let asked = seen.peers.filter { $0.connectBack != nil }
        guard !asked.isEmpty else {
            return Check(name: "connect-back", status: .warning, finding: "no peer to ask", advice: nil)
        }
        let unreached = asked.filter { $0.connectBack?.reached != true }
        guard !unreached.isEmpty else {
            return Check(
                name: "connect-back",
                status: .ok,
                finding: "every peer asked reached this host's transfer port \(port) (\(asked.count))",
                advice: nil
            )
        }
        let list = unreached.map { "\($0.id.short) at \($0.address): \($0.connectBack?.message ?? "")" }
        return Check(
            name: "connect-back",
            status: .failed,
            finding: "\(unreached.count) of \(Self.count(asked.count, "peer")) could not reach this host's transfer "
                + "port \(port): " + list.joined(separator: "; "),
            advice: "open TCP port \(port) in this host's firewall (p2p serve --port picks it); until then those "
                + "peers cannot download from this one"
        )
    }

    private static func throughput(_ speeds: [Speed]) -> Check {
        guard !speeds.isEmpty else {
            return Check(name: "throughput", status: .warning, finding: "no peer answered to measure", advice: nil)
        }
        let parts = speeds.map { speed in
            "\(speed.id.short) "
                + (speed.problem.map { "failed: \($0)" }
                    ?? speed.bytesPerSecond.map { Self.rate($0) } ?? "holds nothing to measure with")
        }
        let failed = speeds.contains { $0.problem != nil }
        return Check(
            name: "throughput",
            status: failed ? .failed : .ok,
            finding: parts.joined(separator: "; "),
            advice: failed ? "a transfer that starts and then fails points at the link or the peer's disk" : nil
        )
    }

    /// Bytes per second, with a binary unit.
    static func rate(_ bytesPerSecond: Double) -> String {
        let units = ["B/s", "KiB/s", "MiB/s", "GiB/s"]
        var value = max(0, bytesPerSecond)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return "\((value * 10).rounded() / 10) \(units[unit])"
    }

    private static func interfaces(_ seen: Observations) -> Check {
        if let error = seen.interfaceError {
            return Check(
                name: "interfaces",
                status: .failed,
                finding: "cannot list the network interfaces: \(error)",
                advice: nil
            )
        }
        guard !seen.networks.isEmpty else {
            return Check(
                name: "interfaces",
                status: .failed,
                finding: "no IPv4 interface in scope is up",
                advice: "bring one up, or check the names given with --interface (ip -brief address lists them)"
            )
        }
        let list = seen.networks.map { network in
            "\(network.interfaceName) \(NetworkScope.dottedQuad(network.address)) "
                + "broadcast \(NetworkScope.dottedQuad(network.broadcast))"
        }
        return Check(name: "interfaces", status: .ok, finding: list.joined(separator: "; "), advice: nil)
    }

    private static func echo(_ seen: Observations) -> Check {
        if seen.ownEchoes > 0 {
            return Check(
                name: "broadcast",
                status: .ok,
                // The host loops its own broadcasts back before they reach the wire: whether
                // they cross the network shows in the peers heard.
                finding: "this peer's own announcements came back (\(seen.ownEchoes)): its interfaces and "
                    + "discovery socket work",
                advice: nil
            )
        }
        let failures = seen.sendFailures > 0 ? " (\(seen.sendFailures) sends failed)" : ""
        return Check(
            name: "broadcast",
            status: seen.networks.isEmpty ? .failed : .warning,
            finding: "none of this peer's announcements came back in \(Self.seconds(seen.listenedSeconds))\(failures)",
            advice: "broadcast on UDP port \(seen.discoveryPort) is dropped here (a firewall, or a network "
                + "without broadcast): peers on other hosts will not find this one by themselves; "
                + "name them with --peer HOST:\(seen.discoveryPort), on both sides"
        )
    }

    private static func peers(_ seen: Observations) -> Check {
        guard !seen.peers.isEmpty else {
            let advice =
                seen.staticPeers > 0
                ? "the --peer addresses did not answer: check that they run p2p with --discovery-port "
                    + "\(seen.discoveryPort) and name this host with --peer too"
                : "start a peer, or check that the others use --discovery-port \(seen.discoveryPort) on the same "
                    + "network; across subnets, VPNs or a network that drops broadcast, name one with "
                    + "--peer HOST:\(seen.discoveryPort)"
            return Check(
                name: "peers",
                status: .warning,
                finding: "heard no peers in \(Self.seconds(seen.listenedSeconds))",
                advice: advice
            )
        }
        let list = seen.peers.map { "\($0.id.short) at \($0.address)" }.joined(separator: ", ")
        return Check(
            name: "peers",
            status: .ok,
            finding: "heard \(Self.count(seen.peers.count, "peer")): \(list)",
            advice: nil
        )
    }

    private static func keys(_ seen: Observations) -> Check {
        guard seen.foreignKeySenders > 0 else {
            return Check(name: "network key", status: .ok, finding: "no peer heard uses another key", advice: nil)
        }
        let count = seen.foreignKeySenders
        let whose = seen.hasKey ? "another --secret (or none)" : "a --secret while this peer has none"
        return Check(
            name: "network key",
            status: .failed,
            finding: "\(Self.count(count, "peer")) \(count == 1 ? "uses" : "use") \(whose)",
            advice: "give every peer of the swarm the same --secret (p2p key makes one)"
        )
    }

    private static func transferPorts(_ seen: Observations) -> Check {
        guard !seen.peers.isEmpty else {
            return Check(name: "transfer ports", status: .warning, finding: "no peer to try", advice: nil)
        }
        let silent = seen.peers.filter { !$0.answered }
        guard !silent.isEmpty else {
            return Check(
                name: "transfer ports",
                status: .ok,
                finding: "every peer heard answered on its transfer port (\(seen.peers.count))",
                advice: nil
            )
        }
        let list = silent.map { "\($0.id.short) at \($0.address)" }.joined(separator: ", ")
        return Check(
            name: "transfer ports",
            status: .failed,
            finding: "\(silent.count) of \(Self.count(seen.peers.count, "peer")) did not answer on the transfer "
                + "port: \(list)",
            advice: "a firewall between here and there drops TCP to that port (p2p serve --port picks it), "
                + "or the peer is overloaded"
        )
    }

    private static func seconds(_ value: Double) -> String {
        let tenths = (value * 10).rounded() / 10
        return tenths == tenths.rounded() ? "\(Int(tenths)) s" : "\(tenths) s"
    }

    private static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }
}
