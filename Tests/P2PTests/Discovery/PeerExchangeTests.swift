import NIOCore
import Testing

@testable import P2P

/// Peer exchange as a value: what is offered, what is taken, and how little a liar gets.
@Suite("PeerExchange")
struct PeerExchangeTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    static let interval = TimeAmount.seconds(1)
    /// This peer is on 198.18.0.0/24.
    static let scope = NetworkScope(networks: [
        .init(interfaceName: "eth0", address: 0xC612_0001, netmask: 0xFFFF_FF00, broadcast: 0xC612_00FF)
    ])
    static let voucher = PeerID(high: 1, low: 1)

    static func entry(_ address: UInt32, _ port: UInt16 = 40_000) -> Announcement.PeerAddress {
        Announcement.PeerAddress(address: address, port: port)
    }

    static func peer(_ low: UInt64, _ address: String, port: Int = 40_000, observer: Bool = false) -> KnownPeer {
        let socket = try! SocketAddress(ipAddress: address, port: port)
        return KnownPeer(
            id: PeerID(high: 0, low: low),
            transferAddress: socket,
            discoveryAddress: socket,
            lastSeen: Self.t0,
            expires: Self.t0 + .seconds(3),
            isObserver: observer
        )
    }

    @Test("addresses this peer would never probe are dropped; the rest are probed at once")
    func learnFilters() {
        var exchange = PeerExchange(interval: Self.interval)
        let listed = [
            Self.entry(0xC612_0105),  // 198.18.1.5: another subnet, probed
            Self.entry(0xC612_0007),  // 198.18.0.7: in scope, heard directly
            Self.entry(0x7F00_0001),  // loopback
            Self.entry(0x0000_0001),  // 0/8
            Self.entry(0xE000_00FB),  // multicast
            Self.entry(0xFFFF_FFFF),  // broadcast
            Self.entry(0x0A00_0009),  // this host's other address
            Self.entry(0xC612_0106),  // known already
        ]
        let known = try! SocketAddress(ipAddress: "198.18.1.6", port: 40_000)
        let probes = exchange.learn(
            listed,
            from: Self.voucher,
            now: Self.t0,
            scope: Self.scope,
            localAddresses: [0x0A00_0009],
            isKnown: { $0 == known }
        )
        #expect(probes.map { $0.ipAddress } == ["198.18.1.5"])
        #expect(exchange.candidateCount == 1)
        #expect(exchange.isCandidate(probes[0]))
    }

    @Test("a candidate that never answers is probed once an interval, three times, then left alone for a while")
    func silentCandidate() {
        var exchange = PeerExchange(interval: Self.interval)
        let address = try! SocketAddress(ipAddress: "198.18.1.5", port: 40_000)
        func learn(at time: NIODeadline) -> [SocketAddress] {
            exchange.learn(
                [Self.entry(0xC612_0105)],
                from: Self.voucher,
                now: time,
                scope: Self.scope,
                localAddresses: [],
                isKnown: { _ in false }
            )
        }
        #expect(learn(at: Self.t0) == [address])
        #expect(exchange.due(now: Self.t0 + .milliseconds(500)).isEmpty)
        #expect(exchange.due(now: Self.t0 + .seconds(1)) == [address])
        #expect(exchange.due(now: Self.t0 + .seconds(2)) == [address])
        #expect(exchange.due(now: Self.t0 + .seconds(3)).isEmpty)
        #expect(!exchange.isCandidate(address))
        // Listed again soon after: not probed; after the silence memory: probed again.
        #expect(learn(at: Self.t0 + .seconds(10)).isEmpty)
        #expect(learn(at: Self.t0 + .seconds(40)) == [address])
    }

    @Test("a candidate that answers is a peer like any other: no more probes")
    func answered() {
        var exchange = PeerExchange(interval: Self.interval)
        let probes = exchange.learn(
            [Self.entry(0xC612_0105)],
            from: Self.voucher,
            now: Self.t0,
            scope: Self.scope,
            localAddresses: [],
            isKnown: { _ in false }
        )
        exchange.heard(from: probes[0])
        #expect(exchange.candidateCount == 0)
        #expect(exchange.due(now: Self.t0 + .seconds(5)).isEmpty)
    }

    @Test("a flood of lists is bounded: per lister, in all, and in probes per interval")
    func floodIsBounded() {
        var exchange = PeerExchange(interval: Self.interval)
        var probed = 0
        for lister in 0..<100 as Range<UInt64> {
            let listed = (0..<32).map { Self.entry(0x0B00_0000 | UInt32(lister << 8) | UInt32($0 + 1)) }
            for _ in 0..<3 {
                probed +=
                    exchange.learn(
                        listed,
                        from: PeerID(high: 9, low: lister),
                        now: Self.t0,
                        scope: Self.scope,
                        localAddresses: [],
                        isKnown: { _ in false }
                    ).count
            }
        }
        let limits = PeerExchange.Limits()
        #expect(exchange.candidateCount == limits.maximumCandidates)
        #expect(probed == limits.probesPerInterval)
        // One lister alone fills at most its share.
        var single = PeerExchange(interval: Self.interval)
        for round in 0..<10 as Range<UInt32> {
            let listed = (0..<32).map { Self.entry(0x0C00_0000 | (round << 8) | UInt32($0 + 1)) }
            _ = single.learn(
                listed,
                from: Self.voucher,
                now: Self.t0 + .seconds(Int64(round)),
                scope: Self.scope,
                localAddresses: [],
                isKnown: { _ in false }
            )
        }
        #expect(single.candidateCount == limits.maximumPerVoucher)
    }

    @Test("offered: serving peers off the target's network, never the target, observers or loopback to another host")
    func offer() {
        let peers = [
            Self.peer(1, "198.18.0.2"),
            Self.peer(2, "198.18.1.5"),
            Self.peer(3, "198.18.1.6", observer: true),
            Self.peer(4, "127.0.0.1"),
            Self.peer(5, "10.1.2.3"),
        ]
        func offered(to target: String, port: Int = 47_474) -> [String] {
            PeerExchange.offer(peers, to: try! SocketAddress(ipAddress: target, port: port), scope: Self.scope, turn: 0)
                .compactMap { $0.socketAddress?.ipAddress }
        }
        // A broadcast on 198.18.0.0/24: its hosts hear each other; the rest are offered.
        #expect(offered(to: "198.18.0.255") == ["198.18.1.5", "10.1.2.3"])
        // A unicast to a peer on another subnet: everyone but itself.
        #expect(offered(to: "198.18.1.5", port: 40_000) == ["198.18.0.2", "10.1.2.3"])
    }

    @Test("a swarm larger than one datagram is offered a slice at a time, every peer in turn")
    func offerInTurns() {
        let peers = (1...80).map { Self.peer(UInt64($0), "10.0.1.\($0)") }
        let target = try! SocketAddress(ipAddress: "198.18.0.255", port: 47_474)
        var seen = Set<Announcement.PeerAddress>()
        for turn in 0..<3 {
            let slice = PeerExchange.offer(peers, to: target, scope: Self.scope, turn: turn)
            #expect(slice.count <= Announcement.maximumExchangedPeers)
            seen.formUnion(slice)
        }
        #expect(seen.count == 80)
    }
}
