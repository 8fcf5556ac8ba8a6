import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import P2P

/// What an attacker on the LAN can send to discovery, against a real `PeerDiscovery` on
/// loopback: forged `stop`s, floods of `start`, replays of keyed datagrams, other keys.
@Suite("Hostile discovery", .serialized, .timeLimit(.minutes(1)))
struct HostileDiscoveryTests {
    static let key = try! NetworkKey(secret: "hostile discovery test key")

    static func announcement(_ kind: Announcement.Kind, _ id: PeerID) -> Announcement {
        Announcement(kind: kind, peerID: id, transferPort: 7999, announceIntervalMilliseconds: 10_000)
    }

    /// Waits until the service hears its own broadcasts: its sockets are bound.
    static func waitUntilListening(_ service: PeerDiscovery) async throws {
        let listening = await poll(timeout: .seconds(2)) { service.statistics.ownEchoes > 0 }
        try #require(listening)
    }

    static func nowMilliseconds() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    static func sealed(
        _ kind: Announcement.Kind,
        _ id: PeerID,
        from sender: DatagramSender,
        counter: UInt64,
        timestamp: UInt64 = HostileDiscoveryTests.nowMilliseconds(),
        key: NetworkKey = HostileDiscoveryTests.key
    ) -> [UInt8] {
        let seal = AnnouncementSeal(
            timestampMilliseconds: timestamp,
            counter: counter,
            sourceAddress: NetworkScope.ipv4(sender.address)!,
            sourcePort: UInt16(sender.address.port!)
        )
        return Array(Self.announcement(kind, id).encoded(key: key, seal: seal).readableBytesView)
    }

    @Test("a stop from another port than the peer's is ignored; one from its own removes it")
    func forgedStop() async throws {
        let port = try await freeUDPPort()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let honest = try await DatagramSender.bind()
        let forger = try await DatagramSender.bind()
        do {
            try await withDiscovery(transferPorts: [7601], port: port) { running in
                let service = running.services[0]
                try await Self.waitUntilListening(service)
                try await Self.waitUntilListening(service)
                let id = PeerID.random()
                try await honest.send(Self.announcement(.alive, id).encoded().bytes, to: target)
                let heard = await poll(timeout: .seconds(2)) { service.table.peer(id) != nil }
                try #require(heard)

                try await forger.send(Self.announcement(.stop, id).encoded().bytes, to: target)
                let refused = await poll(timeout: .seconds(2)) { service.statistics.stopsRefused >= 1 }
                #expect(refused)
                #expect(service.table.peer(id) != nil, "a forged stop evicted the peer")

                try await honest.send(Self.announcement(.stop, id).encoded().bytes, to: target)
                let gone = await poll(timeout: .seconds(2)) { service.table.peer(id) == nil }
                #expect(gone)
            }
        } catch {
            await honest.close()
            await forger.close()
            throw error
        }
        await honest.close()
        await forger.close()
    }

    @Test("a flood of forged starts from one address gets at most the per-source burst of answers")
    func startFlood() async throws {
        let port = try await freeUDPPort()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let listener = try await DatagramSocket.bind(
            host: "127.0.0.1",
            port: 0,
            shared: false,
            group: MultiThreadedEventLoopGroup.singleton
        )
        let counter = Task {
            var count = 0
            for await _ in listener.datagrams { count += 1 }
            return count
        }
        try await withDiscovery(transferPorts: [7602], port: port) { running in
            let service = running.services[0]
            try await Self.waitUntilListening(service)
            let sender = try await DatagramSender.bind()
            // Sent from the listener's own socket, so the answers come back to it.
            let start = Self.announcement(.start, .random()).encoded()
            for _ in 0..<500 {
                try await listener.send(start, to: target)
            }
            await sender.close()
            // Every start beyond what the limiter lets through: the burst of 16 plus what
            // refills while a loaded machine sends the flood, as bounded below.
            let limited = await poll(timeout: .seconds(3)) { service.statistics.answersLimited >= 500 - 40 }
            #expect(limited, "answers limited: \(service.statistics.answersLimited)")
        }
        await listener.close()
        let answers = await counter.value
        // The burst, plus what refilled while the flood was sent (8 a second).
        #expect(answers >= 16 && answers <= 40, "\(answers) answers to 500 forged starts")
    }

    @Test("a keyed datagram replayed from another address, replayed again, or stale, is refused")
    func replays() async throws {
        let port = try await freeUDPPort()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let member = try await DatagramSender.bind()
        let replayer = try await DatagramSender.bind()
        do {
            try await withDiscovery(transferPorts: [7603], port: port, networkKey: Self.key) { running in
                let service = running.services[0]
                try await Self.waitUntilListening(service)
                try await Self.waitUntilListening(service)
                let id = PeerID.random()
                let first = Self.sealed(.alive, id, from: member, counter: 1)
                try await member.send(first, to: target)
                let heard = await poll(timeout: .seconds(2)) { service.table.peer(id) != nil }
                try #require(heard)
                let home = try #require(service.table.peer(id)?.discoveryAddress)

                // The same bytes from the replayer's address: the entry does not move.
                try await replayer.send(first, to: target)
                let replayedElsewhere = await poll(timeout: .seconds(2)) { service.statistics.replays >= 1 }
                #expect(replayedElsewhere)
                #expect(service.table.peer(id)?.discoveryAddress == home)

                // The same bytes from the member's own address: a repeated counter.
                try await member.send(first, to: target)
                let replayedAgain = await poll(timeout: .seconds(2)) { service.statistics.replays >= 2 }
                #expect(replayedAgain)

                // A fresh counter but a timestamp a minute old.
                let stale = Self.sealed(.stop, id, from: member, counter: 5, timestamp: Self.nowMilliseconds() - 60_000)
                try await member.send(stale, to: target)
                let staleRefused = await poll(timeout: .seconds(2)) { service.statistics.replays >= 3 }
                #expect(staleRefused)
                #expect(service.table.peer(id) != nil)

                // The member's own next datagram is taken.
                try await member.send(Self.sealed(.stop, id, from: member, counter: 6), to: target)
                let left = await poll(timeout: .seconds(2)) { service.table.peer(id) == nil }
                #expect(left)
            }
        } catch {
            await member.close()
            await replayer.close()
            throw error
        }
        await member.close()
        await replayer.close()
    }

    @Test("senders with another key are counted once per address, and never listed")
    func foreignKeySenders() async throws {
        let port = try await freeUDPPort()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let other = try NetworkKey(secret: "another swarm's key, not ours")
        let senders = [
            try await DatagramSender.bind(host: "127.0.0.2"), try await DatagramSender.bind(host: "127.0.0.3"),
        ]
        try await withDiscovery(transferPorts: [7604], port: port, networkKey: Self.key) { running in
            let service = running.services[0]
            try await Self.waitUntilListening(service)
            for (index, sender) in senders.enumerated() {
                for counter in 1...3 as ClosedRange<UInt64> {
                    let bytes = Self.sealed(
                        .alive,
                        PeerID(high: 9, low: UInt64(index)),
                        from: sender,
                        counter: counter,
                        key: other
                    )
                    try await sender.send(bytes, to: target)
                }
            }
            // And one without any key.
            try await senders[0].send(Self.announcement(.alive, .random()).encoded().bytes, to: target)
            let counted = await poll(timeout: .seconds(2)) { service.statistics.malformed >= 7 }
            #expect(counted)
            #expect(service.statistics.foreignKeySenders == 2)
            #expect(service.table.all().isEmpty)
        }
        for sender in senders { await sender.close() }
    }

    @Test("only loopback, the networks in scope and --peer addresses are heard")
    func scope() throws {
        let lan = NetworkScope(networks: [
            NetworkScope.Network(
                interfaceName: "eth0",
                address: 0xC0A8_0105,
                netmask: 0xFFFF_FF00,
                broadcast: 0xC0A8_01FF
            )
        ])
        let staticPeer: UInt32 = 0x0A01_0203
        func hears(_ host: String) throws -> Bool {
            PeerDiscovery.hears(try SocketAddress(ipAddress: host, port: 47474), scope: lan, staticPeers: [staticPeer])
        }
        #expect(try hears("192.168.1.77"))
        #expect(try hears("127.0.0.1"))
        #expect(try hears("10.1.2.3"))
        #expect(try !hears("192.168.2.77"))
        #expect(try !hears("198.51.100.7"))
        #expect(try !hears("10.1.2.4"))
    }

    @Test("a keyed datagram names the address the kernel sends it from")
    func sourceAddresses() throws {
        let lo = NetworkScope(networks: [NetworkScope.loopback])
        let broadcast = try SocketAddress(ipAddress: "127.255.255.255", port: 47474)
        #expect(SourceAddress.toward(broadcast, scope: lo, bindHost: "0.0.0.0") == 0x7F00_0001)
        let other = try SocketAddress(ipAddress: "127.0.0.5", port: 47474)
        #expect(SourceAddress.toward(other, scope: NetworkScope(networks: []), bindHost: "0.0.0.0") == 0x7F00_0001)
        #expect(SourceAddress.toward(other, scope: lo, bindHost: "127.0.0.9") == 0x7F00_0009)
    }
}
