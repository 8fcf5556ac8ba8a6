import NIOCore
import P2P
import Testing

/// Real sockets, loopback only: every service runs with `interfaceNames: ["lo"]` on a
/// fresh port, and test datagrams go to 127.0.0.1 or 127.255.255.255. Serialized, since the
/// timings below are the product's promises and should not compete with each other for the
/// two cores.
@Suite("PeerDiscovery", .serialized, .timeLimit(.minutes(1)))
struct PeerDiscoveryTests {
    @Test("three peers know each other within 1 s; a cancelled one is gone from the others within 0.5 s")
    func joinAndLeave() async throws {
        let port = try await freeUDPPort()
        let transferPorts = [7101, 7102, 7103]
        try await withDiscovery(transferPorts: transferPorts, port: port) { running in
            let found = await poll(timeout: .seconds(1)) { running.knowEachOther(0..<3) }
            try #require(found, "tables: \(running.services.map { $0.table.all().map(\.id.short) })")

            for (index, service) in running.services.enumerated() {
                for (otherIndex, other) in running.services.enumerated() where otherIndex != index {
                    let peer = try #require(service.table.peer(other.peerID))
                    #expect(peer.transferAddress.port == transferPorts[otherIndex])
                    #expect(peer.transferAddress.ipAddress?.hasPrefix("127.") == true)
                    #expect(!peer.isObserver)
                }
            }

            let leaving = running.services[2].peerID
            let events = running.services[0].table.events()
            running.stop(2)
            let gone = await poll(timeout: .milliseconds(500)) {
                running.services[0].table.peer(leaving) == nil && running.services[1].table.peer(leaving) == nil
            }
            #expect(gone, "peer \(leaving.short) still known 0.5 s after it stopped")

            // It said goodbye: removed by its `stop`, not expired for silence.
            let event = try await withTimeout(.seconds(1), what: "the leaving peer's event") {
                for await event in events where event.peerID == leaving { return event.kind }
                return "none"
            }
            #expect(event == "left")
            #expect(running.knowEachOther(0..<2))
        }
    }

    @Test("a peer that started later is known to the others within 1 s, and knows them")
    func lateJoiner() async throws {
        let port = try await freeUDPPort()
        try await withDiscovery(transferPorts: [7201, 7202], port: port) { first in
            let ready = await poll(timeout: .seconds(1)) { first.knowEachOther(0..<2) }
            try #require(ready)
            try await withDiscovery(transferPorts: [7203], port: port) { second in
                let newcomer = second.services[0]
                let known = await poll(timeout: .seconds(1)) {
                    first.services.allSatisfy { $0.table.peer(newcomer.peerID) != nil }
                        && Set(newcomer.table.all().map(\.id)) == Set(first.services.map(\.peerID))
                }
                #expect(known)
            }
            // The inner group's end cancelled the newcomer, which announced `stop`.
            let settled = await poll(timeout: .milliseconds(500)) { first.knowEachOther(0..<2) }
            #expect(settled)
        }
    }

    @Test("junk datagrams change no table and are counted as malformed")
    func junk() async throws {
        let port = try await freeUDPPort()
        let sender = try await DatagramSender.bind()
        do {
            try await withDiscovery(transferPorts: [7301, 7302], port: port) { running in
                let ready = await poll(timeout: .seconds(1)) { running.knowEachOther(0..<2) }
                try #require(ready)
                let before = running.services.map { Self.snapshot($0.table) }
                let malformedBefore = running.services.map(\.statistics.malformed)

                var generator = SeededGenerator(seed: UInt64(port))
                let fake = generator.peerID()
                let valid = Announcement(kind: .start, peerID: fake, transferPort: 9, announceIntervalMilliseconds: 200)
                    .encoded().bytes
                var junk: [[UInt8]] = (0..<20).map { _ in
                    // Random bytes of any length but the announcement's.
                    var length = Int.random(in: 1...100, using: &generator)
                    if length == Announcement.minimumLength { length += 1 }
                    return generator.bytes(length)
                }
                var wrongMagic = valid
                wrongMagic[0] = UInt8(ascii: "X")
                var badChecksum = valid
                badChecksum[12] ^= 0x40
                var wrongVersion = valid
                wrongVersion[4] = 1
                var unknownKind = valid
                unknownKind[5] = 9
                var zeroInterval = valid
                zeroInterval[26...29] = [0, 0, 0, 0]
                junk += [
                    wrongMagic,
                    badChecksum,
                    withFixedChecksum(wrongVersion),
                    withFixedChecksum(unknownKind),
                    withFixedChecksum(zeroInterval),
                    valid + [0],
                    Array(valid.dropLast()),
                ]

                let broadcast = try SocketAddress(ipAddress: "127.255.255.255", port: port)
                let unicast = try SocketAddress(ipAddress: "127.0.0.1", port: port)
                for datagram in junk {
                    try await sender.send(datagram, to: broadcast)
                }
                // Unicast to the shared port reaches one of the sockets bound to it.
                let unicastJunk = junk.prefix(5)
                for datagram in unicastJunk {
                    try await sender.send(datagram, to: unicast)
                }

                let expected = junk.count * running.services.count + unicastJunk.count
                func increase() -> [Int] {
                    zip(running.services, malformedBefore).map { $0.statistics.malformed - $1 }
                }
                let counted = await poll(timeout: .seconds(2)) { increase().reduce(0, +) >= expected }
                #expect(counted, "malformed grew by \(increase()), expected \(expected) in all")
                #expect(increase().reduce(0, +) == expected)
                #expect(increase().allSatisfy { $0 >= junk.count }, "each hears every broadcast: \(increase())")

                #expect(running.services.map { Self.snapshot($0.table) } == before)
                #expect(running.services.allSatisfy { $0.table.peer(fake) == nil })
            }
        } catch {
            await sender.close()
            throw error
        }
        await sender.close()
    }

    @Test("a peer that falls silent is dropped after three of its announce intervals, not before")
    func silentPeerExpires() async throws {
        let port = try await freeUDPPort()
        let sender = try await DatagramSender.bind()
        let broadcast = try SocketAddress(ipAddress: "127.255.255.255", port: port)
        do {
            try await withDiscovery(transferPorts: [7401, 7402], port: port) { running in
                let ready = await poll(timeout: .seconds(1)) { running.knowEachOther(0..<2) }
                try #require(ready)
                let accepted = running.services.map(\.statistics.accepted)

                // One `alive` from a peer that then says nothing more.
                let silent = PeerID.random()
                let alive = Announcement(
                    kind: .alive,
                    peerID: silent,
                    transferPort: 7499,
                    announceIntervalMilliseconds: 200
                )
                let sent = ContinuousClock.now
                try await sender.send(alive.encoded().bytes, to: broadcast)

                // The counter goes up just after the table changes: both are waited for.
                let heard = await poll(timeout: .seconds(1)) {
                    zip(running.services, accepted).allSatisfy { service, before in
                        service.table.peer(silent) != nil && service.statistics.accepted > before
                    }
                }
                try #require(heard, "the silent peer's one announcement was never recorded")
                for (service, before) in zip(running.services, accepted) {
                    #expect(service.statistics.accepted > before)
                    #expect(service.table.peer(silent)?.transferAddress.port == 7499)
                }

                let dropped = await poll(every: .milliseconds(10), timeout: .seconds(2)) {
                    running.services.allSatisfy { $0.table.peer(silent) == nil }
                }
                let elapsed = ContinuousClock.now - sent
                #expect(dropped, "still known \(elapsed) after its only announcement")
                // It was recorded after it was sent, so three intervals run from later still.
                #expect(elapsed >= .milliseconds(600))
                // The expiry check runs every 50 ms; allow for a busy machine on top.
                #expect(elapsed < .milliseconds(1500))
                #expect(running.knowEachOther(0..<2))
            }
        } catch {
            await sender.close()
            throw error
        }
        await sender.close()
    }

    @Test("a peer never lists itself, though it hears its own broadcasts")
    func ignoresItself() async throws {
        let port = try await freeUDPPort()
        try await withDiscovery(transferPorts: [7501], port: port) { running in
            let service = running.services[0]
            let echoed = await poll(timeout: .seconds(1)) { service.statistics.ownEchoes > 0 }
            #expect(echoed)
            #expect(service.table.all().isEmpty)
        }
    }

    static func snapshot(_ table: PeerTable) -> [String] {
        table.all().map { "\($0.id) \($0.transferAddressDescription) \($0.isObserver)" }
    }
}
