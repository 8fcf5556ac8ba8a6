import Crypto
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

    static let seal = AnnouncementSeal(
        timestampMilliseconds: 1_800_000_000_000,
        counter: 42,
        sourceAddress: 0x7F00_0001,
        sourcePort: 40_404
    )

    @Test("keyed announcements carry a seal and a tag; missing, wrong or tampered ones are refused")
    func discoveryTags() throws {
        let announcement = Announcement(
            kind: .alive,
            peerID: .random(),
            transferPort: 4000,
            announceIntervalMilliseconds: 2000
        )
        let keyed = announcement.encoded(key: Self.key, seal: Self.seal)
        #expect(keyed.readableBytes == 86)
        #expect(Announcement.sealedTrailerLength == 22 + NetworkKey.discoveryTagLength)
        let parsed = try Announcement.parse(keyed, key: Self.key)
        #expect(parsed.announcement == announcement)
        #expect(parsed.seal == Self.seal)
        #expect(throws: AnnouncementError.badTag) { try Announcement.parse(keyed, key: Self.otherKey) }
        #expect(throws: AnnouncementError.badTag) { try Announcement.parse(announcement.encoded(), key: Self.key) }
        // A keyless peer does not understand a keyed datagram either.
        #expect(throws: AnnouncementError.sealed) { try Announcement.parse(keyed) }
        // Every byte is covered, the seal's included.
        for index in 0..<keyed.readableBytes {
            var tampered = keyed
            tampered.setInteger(tampered.getInteger(at: index, as: UInt8.self)! ^ 1, at: index)
            #expect(throws: AnnouncementError.self) { try Announcement.parse(tampered, key: Self.key) }
        }
    }

    @Test("a seal fits only its own source address and port, within 30 s of the receiver's clock")
    func sealChecks() throws {
        let now = Self.seal.timestampMilliseconds
        let source = try SocketAddress(ipAddress: "127.0.0.1", port: 40_404)
        #expect(Self.seal.problem(receivedFrom: source, nowMilliseconds: now) == nil)
        #expect(Self.seal.problem(receivedFrom: source, nowMilliseconds: now + 30_000) == nil)
        #expect(Self.seal.problem(receivedFrom: source, nowMilliseconds: now - 30_000) == nil)
        #expect(Self.seal.problem(receivedFrom: source, nowMilliseconds: now + 30_001) == .outsideWindow)
        #expect(Self.seal.problem(receivedFrom: source, nowMilliseconds: now - 30_001) == .outsideWindow)
        let elsewhere = try SocketAddress(ipAddress: "127.0.0.2", port: 40_404)
        #expect(Self.seal.problem(receivedFrom: elsewhere, nowMilliseconds: now) == .sourceMismatch)
        let otherPort = try SocketAddress(ipAddress: "127.0.0.1", port: 40_405)
        #expect(Self.seal.problem(receivedFrom: otherPort, nowMilliseconds: now) == .sourceMismatch)
    }

    @Test(
        "the discovery key is HKDF-expanded from scrypt(secret, N=2^14, r=8, p=1), as an independent scrypt computes it"
    )
    func scryptDerivation() throws {
        // From Python's hashlib.scrypt and HMAC-SHA-256 (HKDF-Expand, one block).
        let expected = SymmetricKey(
            data: Self.bytes(hex: "0145d1f3ff45cb42516c59353c3618f8778f3eaa886c9c50f37875de809ec917")
        )
        let announcement = Announcement(
            kind: .start,
            peerID: PeerID(high: 1, low: 2),
            transferPort: 1,
            announceIntervalMilliseconds: 1
        )
        let bytes = Array(announcement.encoded(key: Self.key, seal: Self.seal).readableBytesView)
        let tag = Array(HMAC<SHA256>.authenticationCode(for: bytes.prefix(54), using: expected))
        #expect(Array(bytes.suffix(32)) == tag)
        #expect(NetworkKey.scryptCost == (1 << 14, 8, 1))
    }

    static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    @Test(
        "short passphrases and those of few distinct characters are reported weak",
        arguments: ["password", "correct horse", "aaaaaaaaaaaaaaaaaaaaaaaa", "abcabcabcabcabcabcabc"]
    )
    func weakSecrets(secret: String) {
        #expect(NetworkKey.weakness(of: secret) != nil)
    }

    @Test("long varied passphrases and generated keys are not reported weak")
    func strongSecrets() throws {
        #expect(NetworkKey.weakness(of: "correct horse battery staple") == nil)
        #expect(Self.key.weakness == nil)
        #expect(try NetworkKey(secret: "password").weakness != nil)
        for _ in 0..<50 {
            #expect(NetworkKey.weakness(of: NetworkKey.generate()) == nil)
        }
    }

    @Test("p2p key's keys are p2pk- and 43 base64url characters of 32 random bytes, different each time")
    func generatedKeys() throws {
        let keys = (0..<100).map { _ in NetworkKey.generate() }
        #expect(Set(keys).count == 100)
        for key in keys {
            #expect(key.hasPrefix("p2pk-") && key.count == 48)
            #expect(NetworkKey.isGenerated(key))
            #expect(!key.contains("+") && !key.contains("/") && !key.contains("="))
        }
        #expect(!NetworkKey.isGenerated("p2pk-short"))
        _ = try NetworkKey(secret: keys[0])
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
            settings: TransferSettings(networkKey: Self.key, logger: StorageFixture.logger),
            responder: SwarmResponder(store: store, statistics: TransferStatistics(), logger: StorageFixture.logger)
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
            try await TransferClient.connect(to: address, settings: .test(key: Self.key), answerTimeout: .seconds(5)) {
                session in
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
                    try await TransferClient.connect(to: address, settings: .test(key: key), answerTimeout: .seconds(6))
                    {
                        session in
                        _ = try await session.inventory()
                    }
                }
            }
            try await TransferClient.connect(to: address, settings: .test(key: Self.key), answerTimeout: .seconds(5)) {
                session in
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
            settings: TransferSettings(logger: StorageFixture.logger),
            responder: SwarmResponder(store: store, statistics: TransferStatistics(), logger: StorageFixture.logger)
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            await #expect(throws: (any Error).self) {
                try await TransferClient.connect(
                    to: address,
                    settings: .test(key: Self.key),
                    answerTimeout: .seconds(6)
                ) {
                    session in
                    _ = try await session.inventory()
                }
            }
        }
        await store.close()
    }
}
