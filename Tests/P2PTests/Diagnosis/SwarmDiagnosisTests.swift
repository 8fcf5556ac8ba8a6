import P2P
import Testing

@Suite("doctor's checks")
struct SwarmDiagnosisTests {
    static let peer = SwarmDiagnosis.Sighting(id: PeerID(high: 1, low: 2), address: "198.18.0.2:47475", answered: true)

    static func seen(
        networks: [NetworkScope.Network] = [NetworkScope.loopback],
        echoes: Int = 1,
        peers: [SwarmDiagnosis.Sighting] = [peer],
        foreign: Int = 0,
        hasKey: Bool = false
    ) -> SwarmDiagnosis.Observations {
        SwarmDiagnosis.Observations(
            networks: networks,
            discoveryPort: 47474,
            listenedSeconds: 2,
            ownEchoes: echoes,
            peers: peers,
            foreignKeySenders: foreign,
            hasKey: hasKey
        )
    }

    static func check(_ name: String, in seen: SwarmDiagnosis.Observations) -> SwarmDiagnosis.Check? {
        SwarmDiagnosis.checks(seen).first { $0.name == name }
    }

    @Test("a healthy swarm passes every check, one line each")
    func healthy() {
        let checks = SwarmDiagnosis.checks(Self.seen())
        #expect(checks.map(\.name) == ["interfaces", "broadcast", "peers", "network key", "transfer ports"])
        #expect(checks.allSatisfy { $0.status == .ok }, "\(checks.map(\.line))")
        #expect(checks[0].finding == "lo 127.0.0.1 broadcast 127.255.255.255")
        #expect(checks.allSatisfy { !$0.line.contains("\n") })
    }

    @Test("no interface in scope fails, and says to check --interface")
    func noInterface() {
        let check = Self.check("interfaces", in: Self.seen(networks: []))
        #expect(check?.status == .failed)
        #expect(check?.advice?.contains("--interface") == true)
    }

    @Test("broadcasts that never come back warn, and point at --peer")
    func droppedBroadcast() {
        let check = Self.check("broadcast", in: Self.seen(echoes: 0))
        #expect(check?.status == .warning)
        #expect(check?.advice?.contains("--peer HOST:47474") == true)
    }

    @Test("peers with another key fail the key check, counted")
    func foreignKeys() {
        let check = Self.check("network key", in: Self.seen(foreign: 3, hasKey: true))
        #expect(check?.status == .failed)
        #expect(check?.finding == "3 peers use another --secret (or none)")
        let unkeyed = Self.check("network key", in: Self.seen(foreign: 1, hasKey: false))
        #expect(unkeyed?.finding == "1 peer uses a --secret while this peer has none")
    }

    @Test("a peer heard whose transfer port does not answer fails, named")
    func silentTransferPort() {
        var silent = Self.peer
        silent.answered = false
        let check = Self.check("transfer ports", in: Self.seen(peers: [Self.peer, silent]))
        #expect(check?.status == .failed)
        #expect(check?.finding.contains("1 of 2 peers") == true)
        #expect(check?.finding.contains("198.18.0.2:47475") == true)
    }

    @Test("no peers heard warns, and the transfer check has nothing to try")
    func alone() {
        let seen = Self.seen(peers: [])
        #expect(Self.check("peers", in: seen)?.status == .warning)
        #expect(Self.check("transfer ports", in: seen)?.finding == "no peer to try")
    }

    @Test("speeds add a throughput line: rates, peers with nothing to send, and failures")
    func throughput() {
        var seen = Self.seen()
        #expect(Self.check("throughput", in: seen) == nil)
        seen.speeds = [
            SwarmDiagnosis.Speed(id: PeerID(high: 0xAB00_0000_0000_0000, low: 0), bytesPerSecond: 3 * 1_048_576),
            SwarmDiagnosis.Speed(id: PeerID(high: 0xCD00_0000_0000_0000, low: 0), bytesPerSecond: nil),
        ]
        let ok = Self.check("throughput", in: seen)
        #expect(ok?.status == .ok)
        #expect(ok?.finding == "ab000000 3.0 MiB/s; cd000000 holds nothing to measure with")
        seen.speeds?.append(SwarmDiagnosis.Speed(id: PeerID(high: 1, low: 0), bytesPerSecond: nil, problem: "reset"))
        #expect(Self.check("throughput", in: seen)?.status == .failed)
    }

    @Test("peers asked to connect back: all reached passes; one that could not fails, named, with its reason")
    func connectBack() {
        var reached = Self.peer
        reached.connectBack = (true, "answered")
        var seen = Self.seen(peers: [reached])
        #expect(Self.check("connect-back", in: seen) == nil)
        seen.connectBackPort = 47475
        #expect(Self.check("connect-back", in: seen)?.status == .ok)
        var blocked = Self.peer
        blocked.address = "198.18.0.3:47475"
        blocked.connectBack = (false, "connection refused")
        seen.peers.append(blocked)
        let check = Self.check("connect-back", in: seen)
        #expect(check?.status == .failed)
        #expect(check?.finding.contains("198.18.0.3:47475: connection refused") == true)
        #expect(check?.advice?.contains("TCP port 47475") == true)
    }
}
