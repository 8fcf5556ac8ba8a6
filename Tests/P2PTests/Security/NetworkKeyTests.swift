import NIOCore
import NIOPosix
import P2P
import Testing

@Suite("Network key: authenticated discovery and transfer")
struct NetworkKeyTests {
    static let key = try! NetworkKey(secret: "correct horse battery")
    static let otherKey = try! NetworkKey(secret: "wrong horse battery")

    @Test("a secret shorter than 8 bytes is refused")
    func shortSecret() {
        #expect(throws: P2PError.self) { try NetworkKey(secret: "short") }
    }

    @Test("keyed announcements carry a tag; missing, wrong or tampered tags are refused")
    func discoveryTags() throws {
        let announcement = Announcement(
            kind: .alive,
            peerID: .random(),
            transferPort: 4000,
            announceIntervalMilliseconds: 2000
        )
        let keyed = announcement.encoded(key: Self.key)
        #expect(keyed.readableBytes == Announcement.encodedLength + NetworkKey.discoveryTagLength)
        #expect(try Announcement.parse(keyed, key: Self.key) == announcement)
        #expect(throws: AnnouncementError.badTag) { try Announcement.parse(keyed, key: Self.otherKey) }
        #expect(throws: AnnouncementError.badTag) { try Announcement.parse(announcement.encoded(), key: Self.key) }
        // A keyless peer does not understand a keyed datagram either.
        #expect(throws: AnnouncementError.self) { try Announcement.parse(keyed) }
        for index in 0..<keyed.readableBytes {
            var tampered = keyed
            tampered.setInteger(tampered.getInteger(at: index, as: UInt8.self)! ^ 1, at: index)
            #expect(throws: AnnouncementError.self) { try Announcement.parse(tampered, key: Self.key) }
        }
    }

    /// A keyed server on loopback with one shared file.
    func withKeyedServer(_ body: @Sendable (SocketAddress, FileID) async throws -> Void) async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        try fixture.share("secret.bin", size: 700_000)
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        let id = try #require(await store.inventory().first?.id)
        let server = try await TransferServer.bind(
            host: "127.0.0.1",
            port: 0,
            networkKey: Self.key,
            responder: SwarmResponder(store: store, statistics: TransferStatistics(), logger: StorageFixture.logger),
            logger: StorageFixture.logger
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            try await body(address, id)
        }
        await store.close()
    }

    @Test("peers with the key list and download over an encrypted connection")
    func keyedTransfer() async throws {
        try await self.withKeyedServer { address, id in
            try await PeerSession.connect(to: address, answerTimeout: .seconds(5), networkKey: Self.key) { session in
                let inventory = try await session.inventory()
                #expect(inventory.map(\.id) == [id])
                let fetched = try await session.manifest(for: id)
                let manifest = try #require(fetched)
                try await session.send((0..<manifest.chunkCount).map { .chunkRequest(id, chunk: $0) })
                for index in 0..<manifest.chunkCount {
                    guard case .chunkData(_, let chunk, let bytes) = try await session.receive() else {
                        Issue.record("expected chunk data")
                        return
                    }
                    #expect(chunk == index && manifest.verify(bytes, chunk: chunk))
                }
            }
        }
    }

    @Test("a peer without the key, or with another, gets nothing; keyed peers are served as before")
    func refusals() async throws {
        try await self.withKeyedServer { address, id in
            for key in [nil, Self.otherKey] {
                await #expect(throws: (any Error).self) {
                    try await PeerSession.connect(to: address, answerTimeout: .seconds(6), networkKey: key) { session in
                        _ = try await session.inventory()
                    }
                }
            }
            try await PeerSession.connect(to: address, answerTimeout: .seconds(5), networkKey: Self.key) { session in
                let inventory = try await session.inventory()
                #expect(inventory.map(\.id) == [id])
            }
        }
    }

    @Test("a keyed client refuses a keyless server")
    func keylessServer() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: StorageFixture.logger)
        let server = try await TransferServer.bind(
            host: "127.0.0.1",
            port: 0,
            responder: SwarmResponder(store: store, statistics: TransferStatistics(), logger: StorageFixture.logger),
            logger: StorageFixture.logger
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            await #expect(throws: (any Error).self) {
                try await PeerSession.connect(to: address, answerTimeout: .seconds(6), networkKey: Self.key) {
                    session in
                    _ = try await session.inventory()
                }
            }
        }
        await store.close()
    }
}
