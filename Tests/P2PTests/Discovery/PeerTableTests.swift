import NIOCore
import P2P
import Testing

@Suite("PeerTable")
struct PeerTableTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static func announcement(
        _ kind: Announcement.Kind,
        _ id: PeerID,
        port: UInt16 = 7000,
        intervalMilliseconds: UInt32 = 200
    ) -> Announcement {
        Announcement(kind: kind, peerID: id, transferPort: port, announceIntervalMilliseconds: intervalMilliseconds)
    }

    static func source(_ host: String = "127.0.0.9", port: Int = 50_123) throws -> SocketAddress {
        try SocketAddress(ipAddress: host, port: port)
    }

    @Test(
        "start, then alive, adds a peer once and reports joined only the first time",
        arguments: [
            [Announcement.Kind.start, .alive, .alive], [.alive, .start, .alive], [.alive, .alive],
        ]
    )
    func joinsOnce(kinds: [Announcement.Kind]) throws {
        let table = PeerTable()
        let id = PeerID(high: 1, low: 2)
        var events: [PeerEvent?] = []
        for (index, kind) in kinds.enumerated() {
            events.append(
                table.record(
                    Self.announcement(kind, id),
                    from: try Self.source(),
                    now: Self.t0 + .milliseconds(Int64(index) * 100)
                )
            )
        }
        guard case .joined(let joined) = try #require(events.first) else {
            Issue.record("first event is \(String(describing: events.first)), not joined")
            return
        }
        #expect(joined.id == id)
        #expect(joined.lastSeen == Self.t0)
        #expect(events.dropFirst().allSatisfy { $0 == nil })
        #expect(table.all().map(\.id) == [id])
        // Each later announcement refreshed the entry.
        let last = Self.t0 + .milliseconds(Int64(kinds.count - 1) * 100)
        #expect(table.peer(id)?.lastSeen == last)
        #expect(table.peer(id)?.expires == last + .milliseconds(600))
    }

    @Test("the transfer address is the sender's IP with the announced port; the discovery address is the sender")
    func addresses() throws {
        let table = PeerTable()
        let id = PeerID(high: 3, low: 4)
        let source = try Self.source("127.1.2.3", port: 40_001)
        table.record(Self.announcement(.start, id, port: 7777), from: source, now: Self.t0)
        let peer = try #require(table.peer(id))
        #expect(peer.transferAddress == (try SocketAddress(ipAddress: "127.1.2.3", port: 7777)))
        #expect(peer.discoveryAddress == source)
        #expect(peer.transferAddressDescription == "127.1.2.3:7777")
        #expect(!peer.isObserver)
        #expect(peer.lastSeen == Self.t0)
        #expect(peer.expires == Self.t0 + .milliseconds(600))
        #expect(table.servingPeers().map(\.id) == [id])
    }

    @Test("a peer that announces transfer port 0 is an observer and not a serving peer")
    func observer() throws {
        let table = PeerTable()
        let observer = PeerID(high: 5, low: 0)
        let server = PeerID(high: 6, low: 0)
        table.record(Self.announcement(.start, observer, port: 0), from: try Self.source(), now: Self.t0)
        table.record(Self.announcement(.start, server, port: 1), from: try Self.source(), now: Self.t0)
        #expect(table.peer(observer)?.isObserver == true)
        #expect(table.peer(server)?.isObserver == false)
        #expect(table.all().map(\.id) == [observer, server])
        #expect(table.servingPeers().map(\.id) == [server])
    }

    @Test("stop removes the peer with a left event; stop from an unknown peer does nothing")
    func stop() throws {
        let table = PeerTable()
        let id = PeerID(high: 7, low: 0)
        let other = PeerID(high: 8, low: 0)
        table.record(Self.announcement(.start, id), from: try Self.source(), now: Self.t0)
        table.record(Self.announcement(.start, other), from: try Self.source(), now: Self.t0)
        let peer = try #require(table.peer(id))

        let event = table.record(
            Self.announcement(.stop, id),
            from: try Self.source(),
            now: Self.t0 + .milliseconds(10)
        )
        #expect(event == .left(peer))
        #expect(table.peer(id) == nil)
        #expect(table.all().map(\.id) == [other])

        #expect(table.record(Self.announcement(.stop, id), from: try Self.source(), now: Self.t0) == nil)
        #expect(table.record(Self.announcement(.stop, PeerID(high: 99, low: 0)), from: try Self.source()) == nil)
        #expect(table.all().map(\.id) == [other])
    }

    @Test(
        "a silent peer expires after three of its own announce intervals, and not before",
        arguments: [1, 200, 2000, 60_000] as [UInt32]
    )
    func expiry(intervalMilliseconds: UInt32) throws {
        let table = PeerTable()
        let id = PeerID(high: 9, low: 0)
        table.record(
            Self.announcement(.alive, id, intervalMilliseconds: intervalMilliseconds),
            from: try Self.source(),
            now: Self.t0
        )
        let lifetime = TimeAmount.milliseconds(3 * Int64(intervalMilliseconds))

        #expect(table.expire(now: Self.t0).isEmpty)
        #expect(table.expire(now: Self.t0 + lifetime - .nanoseconds(1)).isEmpty)
        #expect(table.peer(id) != nil)
        #expect(table.expire(now: Self.t0 + lifetime).map(\.id) == [id])
        #expect(table.peer(id) == nil)
        #expect(table.expire(now: Self.t0 + lifetime * 2).isEmpty)
    }

    @Test("each peer expires by its own interval, and hearing it again postpones expiry")
    func ownIntervals() throws {
        let table = PeerTable()
        let fast = PeerID(high: 10, low: 0)
        let slow = PeerID(high: 11, low: 0)
        table.record(Self.announcement(.alive, fast, intervalMilliseconds: 100), from: try Self.source(), now: Self.t0)
        table.record(Self.announcement(.alive, slow, intervalMilliseconds: 1000), from: try Self.source(), now: Self.t0)

        #expect(table.expire(now: Self.t0 + .milliseconds(300)).map(\.id) == [fast])
        #expect(table.peer(slow) != nil)

        // Heard again at 2.5 s: alive until 5.5 s, not 3 s.
        table.record(
            Self.announcement(.alive, slow, intervalMilliseconds: 1000),
            from: try Self.source(),
            now: Self.t0 + .milliseconds(2500)
        )
        #expect(table.expire(now: Self.t0 + .milliseconds(3000)).isEmpty)
        #expect(table.expire(now: Self.t0 + .milliseconds(5499)).isEmpty)
        #expect(table.expire(now: Self.t0 + .milliseconds(5500)).map(\.id) == [slow])
    }

    @Test("remove forgets a peer without an event")
    func remove() async throws {
        let table = PeerTable()
        let id = PeerID(high: 12, low: 0)
        table.record(Self.announcement(.start, id), from: try Self.source(), now: Self.t0)
        let events = table.events()
        table.remove(id)
        #expect(table.peer(id) == nil)
        // The next event is the one caused afterwards, not one for the removal.
        let next = PeerID(high: 13, low: 0)
        table.record(Self.announcement(.start, next), from: try Self.source(), now: Self.t0)
        let first = try await withTimeout(.seconds(2), what: "an event") {
            var iterator = events.makeAsyncIterator()
            return await iterator.next()
        }
        #expect(first?.peerID == next)
    }

    @Test("events() delivers joined, left and expired, in order, to every subscriber")
    func events() async throws {
        let table = PeerTable()
        let before = PeerID(high: 20, low: 0)
        table.record(Self.announcement(.start, before), from: try Self.source(), now: Self.t0)

        let first = table.events()
        let second = table.events()
        let a = PeerID(high: 21, low: 0)
        let b = PeerID(high: 22, low: 0)
        table.record(Self.announcement(.start, a), from: try Self.source(), now: Self.t0)
        table.record(Self.announcement(.alive, a), from: try Self.source(), now: Self.t0)
        table.record(Self.announcement(.alive, b, intervalMilliseconds: 10), from: try Self.source(), now: Self.t0)
        table.record(Self.announcement(.stop, a), from: try Self.source(), now: Self.t0)
        table.expire(now: Self.t0 + .milliseconds(600))

        let expected: [(String, PeerID)] = [
            ("joined", a), ("joined", b), ("left", a), ("expired", b), ("expired", before),
        ]
        for stream in [first, second] {
            let received = try await withTimeout(.seconds(2), what: "five events") {
                var collected: [PeerEvent] = []
                for await event in stream {
                    collected.append(event)
                    if collected.count == 5 { break }
                }
                return collected
            }
            #expect(received.count == 5)
            // `expire` reports what expired together in no particular order.
            let kinds = received.map { ($0.kind, $0.peerID) }
            #expect(kinds.prefix(3).elementsEqual(expected.prefix(3)) { $0.0 == $1.0 && $0.1 == $1.1 })
            #expect(Set(kinds.dropFirst(3).map(\.1)) == [b, before])
            #expect(kinds.dropFirst(3).allSatisfy { $0.0 == "expired" })
        }
    }
}

extension PeerEvent {
    var kind: String {
        switch self {
        case .joined: "joined"
        case .left: "left"
        case .expired: "expired"
        }
    }

    var peerID: PeerID {
        switch self {
        case .joined(let peer), .left(let peer), .expired(let peer): peer.id
        }
    }
}
