import Crypto
import Testing

@testable import P2P

/// The keyed handshake as two values talking to each other: no channel, no clock, no
/// randomness but the nonces given.
@Suite("Handshake")
struct HandshakeTests {
    static let key = try! NetworkKey(secret: "handshake-test-secret-0123456789")
    static let clientNonce = [UInt8](repeating: 1, count: Handshake.nonceLength)
    static let serverNonce = [UInt8](repeating: 2, count: Handshake.nonceLength)

    /// What the action sends, if anything.
    static func sent(_ action: Handshake.Action) -> [UInt8]? {
        switch action {
        case .send(let payload), .sendAndEstablish(let payload, _): payload
        case .establish, .fail, .none: nil
        }
    }

    static func keys(_ action: Handshake.Action) -> Handshake.SessionKeys? {
        switch action {
        case .sendAndEstablish(_, let keys), .establish(let keys): keys
        case .send, .fail, .none: nil
        }
    }

    static func failure(_ action: Handshake.Action) -> String? {
        if case .fail(let reason) = action { return reason }
        return nil
    }

    @Test("two ends with one key agree on crossed session keys in three hellos")
    func succeeds() throws {
        var client = Handshake(key: Self.key, role: .client, nonce: Self.clientNonce)
        var server = Handshake(key: Self.key, role: .server, nonce: Self.serverNonce)
        let first = client.start()
        #expect(Self.sent(first) == Self.clientNonce)
        let idle = server.start()
        #expect(Self.sent(idle) == nil && Self.failure(idle) == nil)
        let second = server.received(hello: try #require(Self.sent(first)))
        let third = client.received(hello: try #require(Self.sent(second)))
        let clientKeys = try #require(Self.keys(third))
        let last = server.received(hello: try #require(Self.sent(third)))
        let serverKeys = try #require(Self.keys(last))
        #expect(client.isEstablished && server.isEstablished)
        let sealed = try AES.GCM.seal(Array("ping".utf8), using: clientKeys.seal)
        #expect(Array(try AES.GCM.open(sealed, using: serverKeys.open)) == Array("ping".utf8))
        let back = try AES.GCM.seal(Array("pong".utf8), using: serverKeys.seal)
        #expect(Array(try AES.GCM.open(back, using: clientKeys.open)) == Array("pong".utf8))
        // Each direction has a key of its own.
        #expect(throws: (any Error).self) { try AES.GCM.open(sealed, using: clientKeys.open) }
    }

    @Test("a server with another key is refused by the client; a client with another key by the server")
    func otherKeysAreRefused() throws {
        let other = try NetworkKey(secret: "another-secret-entirely-9876543210")
        var client = Handshake(key: Self.key, role: .client, nonce: Self.clientNonce)
        var wrongServer = Handshake(key: other, role: .server, nonce: Self.serverNonce)
        let answer = wrongServer.received(hello: try #require(Self.sent(client.start())))
        let refused = client.received(hello: try #require(Self.sent(answer)))
        #expect(Self.failure(refused)?.contains("does not know the network key") == true)
        #expect(!client.isEstablished)

        var wrongClient = Handshake(key: other, role: .client, nonce: Self.clientNonce)
        var server = Handshake(key: Self.key, role: .server, nonce: Self.serverNonce)
        let challenge = server.received(hello: try #require(Self.sent(wrongClient.start())))
        // The client cannot verify the server's proof either, so it never sends its own;
        // a proof forged without the key is refused by the server.
        #expect(Self.failure(wrongClient.received(hello: try #require(Self.sent(challenge)))) != nil)
        let forged = [UInt8](repeating: 0xAB, count: Handshake.proofLength)
        #expect(Self.failure(server.received(hello: forged))?.contains("does not know the network key") == true)
    }

    @Test("a recorded client proof does not open a second connection: the server's nonce is new")
    func replayIsRefused() throws {
        var client = Handshake(key: Self.key, role: .client, nonce: Self.clientNonce)
        var server = Handshake(key: Self.key, role: .server, nonce: Self.serverNonce)
        let hello = try #require(Self.sent(client.start()))
        let challenge = try #require(Self.sent(server.received(hello: hello)))
        let proof = try #require(Self.sent(client.received(hello: challenge)))
        // The attacker replays the client's two hellos to a server with a fresh nonce.
        var fresh = Handshake(key: Self.key, role: .server, nonce: [UInt8](repeating: 3, count: Handshake.nonceLength))
        _ = fresh.received(hello: hello)
        #expect(Self.failure(fresh.received(hello: proof)) != nil)
        #expect(!fresh.isEstablished)
    }

    @Test("anything but the right hello before the end fails once, then nothing more happens")
    func outOfTurn() {
        var server = Handshake(key: Self.key, role: .server, nonce: Self.serverNonce)
        #expect(Self.failure(server.received(hello: nil)) != nil)
        if case .none = server.received(hello: Self.clientNonce) {} else { Issue.record("acted after failing") }
        var short = Handshake(key: Self.key, role: .server, nonce: Self.serverNonce)
        #expect(Self.failure(short.received(hello: [1, 2, 3])) != nil)
        var timedOut = Handshake(key: Self.key, role: .client, nonce: Self.clientNonce)
        _ = timedOut.start()
        #expect(Self.failure(timedOut.fail("no authenticated handshake within 5 s")) != nil)
        if case .none = timedOut.fail("again") {} else { Issue.record("failed twice") }
    }
}
