import NIOCore
import P2P
import Testing

/// The table's decisions with time passed in: bounds, expiry, which `stop` counts, replays.
@Suite("PeerRoster")
struct PeerRosterTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static func alive(_ id: PeerID, kind: Announcement.Kind = .alive, interval: UInt32 = 2000) -> Announcement {
        Announcement(kind: kind, peerID: id, transferPort: 7000, announceIntervalMilliseconds: interval)
    }

    static func address(_ value: UInt32, port: Int = 40_000) -> SocketAddress {
        try! SocketAddress(ipAddress: NetworkScope.dottedQuad(value), port: port)
    }

    @Test("a flood of 100,000 forged ids from many addresses fills the table to its bound and evicts no one")
    func floodIsBounded() {
        var roster = PeerRoster()
        let honest = PeerID(high: 1, low: 1)
        let honestAddress = Self.address(0xC0A8_0114)
        #expect(roster.record(Self.alive(honest), from: honestAddress, now: Self.t0) != .refused(.tableFull))
        var generator = SeededGenerator(seed: 5)
        var refused = 0
        for index in 0..<100_000 {
            // 10,000 source addresses on 10.0.0.0/8, ten ids each.
            let source = Self.address(0x0A00_0000 | UInt32(index % 10_000))
            let outcome = roster.record(
                Self.alive(generator.peerID(), interval: .max),
                from: source,
                now: Self.t0 + .milliseconds(Int64(index / 100))
            )
            if case .refused(.tableFull) = outcome { refused += 1 }
        }
        #expect(roster.peers.count == PeerRoster.Limits.defaultMaximumPeers)
        #expect(refused == 100_000 - (PeerRoster.Limits.defaultMaximumPeers - 1))
        #expect(roster.peers[honest] != nil)
        // The honest peer goes on being heard, and stays.
        let later = Self.t0 + .seconds(5)
        guard case .refreshed(let refreshed) = roster.record(Self.alive(honest), from: honestAddress, now: later) else {
            Issue.record("the honest peer was not refreshed")
            return
        }
        #expect(refreshed.expires == later + .seconds(6))
    }

    @Test("one address gets at most its share of the table; other addresses still get in")
    func perAddressBound() {
        var roster = PeerRoster(limits: PeerRoster.Limits(maximumPeers: 100, maximumPeersPerAddress: 3))
        let flooder = Self.address(0x7F00_0009)
        var outcomes: [PeerRoster.Outcome] = []
        for low in 0..<5 as Range<UInt64> {
            // Any port: the bound is per IP address.
            outcomes.append(
                roster.record(
                    Self.alive(PeerID(high: 2, low: low)),
                    from: Self.address(0x7F00_0009, port: 40_000 + Int(low)),
                    now: Self.t0
                )
            )
        }
        #expect(outcomes.prefix(3).allSatisfy { if case .joined = $0 { true } else { false } })
        #expect(outcomes.suffix(2) == [.refused(.addressFull), .refused(.addressFull)])
        #expect(roster.peerCount(from: flooder) == 3)
        guard
            case .joined = roster.record(
                Self.alive(PeerID(high: 3, low: 0)),
                from: Self.address(0x7F00_000A),
                now: Self.t0
            )
        else {
            Issue.record("another address was refused")
            return
        }
        // A peer that leaves makes room for the next from its address.
        roster.remove(PeerID(high: 2, low: 0))
        #expect(roster.peerCount(from: flooder) == 2)
        guard case .joined = roster.record(Self.alive(PeerID(high: 2, low: 9)), from: flooder, now: Self.t0) else {
            Issue.record("no room after a peer left")
            return
        }
    }

    @Test("a peer that moves counts against its new address, not its old one")
    func movedPeerIsRecounted() {
        var roster = PeerRoster(limits: PeerRoster.Limits(maximumPeers: 100, maximumPeersPerAddress: 1))
        let id = PeerID(high: 4, low: 0)
        _ = roster.record(Self.alive(id), from: Self.address(0x0A00_0001), now: Self.t0)
        guard case .refreshed = roster.record(Self.alive(id), from: Self.address(0x0A00_0002), now: Self.t0) else {
            Issue.record("the move was refused")
            return
        }
        #expect(roster.peerCount(from: Self.address(0x0A00_0001)) == 0)
        #expect(roster.peerCount(from: Self.address(0x0A00_0002)) == 1)
        #expect(
            roster.record(Self.alive(PeerID(high: 5, low: 0)), from: Self.address(0x0A00_0002), now: Self.t0)
                == .refused(.addressFull)
        )
    }

    @Test(
        "a claimed interval longer than 60 s expires the peer after 3 × 60 s",
        arguments: [60_001, 3_600_000, UInt32.max] as [UInt32]
    )
    func intervalIsClamped(interval: UInt32) {
        var roster = PeerRoster()
        let id = PeerID(high: 6, low: 0)
        _ = roster.record(Self.alive(id, interval: interval), from: Self.address(0x0A00_0003), now: Self.t0)
        #expect(roster.peers[id]?.expires == Self.t0 + .seconds(180))
        #expect(roster.expire(now: Self.t0 + .seconds(180) - .nanoseconds(1)).isEmpty)
        #expect(roster.expire(now: Self.t0 + .seconds(180)).map(\.id) == [id])
        #expect(roster.peers.isEmpty)
    }

    @Test("a stop is taken only from the address and port recorded for the peer")
    func stopFromElsewhere() throws {
        var roster = PeerRoster()
        let id = PeerID(high: 7, low: 0)
        let home = Self.address(0xC0A8_0114, port: 41_000)
        _ = roster.record(Self.alive(id), from: home, now: Self.t0)
        let stop = Self.alive(id, kind: .stop)
        #expect(
            roster.record(stop, from: Self.address(0xC0A8_0166, port: 41_000), now: Self.t0)
                == .refused(.stopFromElsewhere)
        )
        #expect(
            roster.record(stop, from: Self.address(0xC0A8_0114, port: 41_001), now: Self.t0)
                == .refused(.stopFromElsewhere)
        )
        let known = try #require(roster.peers[id])
        #expect(roster.record(stop, from: home, now: Self.t0) == .left(known))
        #expect(roster.peers[id] == nil)
        #expect(roster.record(stop, from: home, now: Self.t0) == .refused(.unknownStop))
    }

    @Test("a counter not above the last accepted is a replay; a departed peer's counter is kept a while")
    func replays() {
        var roster = PeerRoster()
        let id = PeerID(high: 8, low: 0)
        let home = Self.address(0xC0A8_0114)
        guard case .joined = roster.record(Self.alive(id), from: home, counter: 10, now: Self.t0) else {
            Issue.record("not joined")
            return
        }
        #expect(roster.record(Self.alive(id), from: home, counter: 10, now: Self.t0) == .refused(.replayed))
        #expect(roster.record(Self.alive(id), from: home, counter: 9, now: Self.t0) == .refused(.replayed))
        #expect(roster.record(Self.alive(id, kind: .stop), from: home, counter: 9, now: Self.t0) == .refused(.replayed))
        guard case .refreshed = roster.record(Self.alive(id), from: home, counter: 11, now: Self.t0) else {
            Issue.record("the next counter was refused")
            return
        }
        guard case .left = roster.record(Self.alive(id, kind: .stop), from: home, counter: 12, now: Self.t0) else {
            Issue.record("the stop was refused")
            return
        }
        // Its recorded `alive` cannot bring it back while the timestamp would still pass...
        #expect(
            roster.record(Self.alive(id), from: home, counter: 11, now: Self.t0 + .seconds(1)) == .refused(.replayed)
        )
        // ...and once the counter is forgotten, the seal's timestamp is too old anyway.
        _ = roster.expire(now: Self.t0 + .seconds(61))
        guard case .joined = roster.record(Self.alive(id), from: home, counter: 11, now: Self.t0 + .seconds(61)) else {
            Issue.record("the counter was not forgotten")
            return
        }
    }
}
