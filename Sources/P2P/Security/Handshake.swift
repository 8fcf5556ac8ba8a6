import Crypto

/// The mutual handshake of a keyed transfer connection, as a value: which hello to send,
/// whether the peer's proves the key, and the session keys once both sides have. No
/// channel, clock or randomness inside: the nonces are given, and `SecureChannelHandler`
/// sends what it says and seals with the keys it ends with.
///
/// ```
/// client → server   hello: client nonce (32 random bytes)
/// server → client   hello: server nonce (32) ‖ HMAC(K, "server" ‖ nonces)
/// client → server   hello: HMAC(K, "client" ‖ nonces)
/// ```
struct Handshake {
    /// Which end of the connection this is.
    enum Role: Equatable {
        case client
        case server
    }

    /// The keys each direction is sealed with once the handshake succeeds.
    struct SessionKeys {
        /// Seals what this end sends.
        var seal: SymmetricKey
        /// Opens what this end receives.
        var open: SymmetricKey
    }

    /// What the driver does next.
    enum Action {
        /// Send this hello payload.
        case send([UInt8])
        /// Send this hello payload; the connection is then authenticated, sealed with `keys`.
        case sendAndEstablish([UInt8], SessionKeys)
        /// The connection is authenticated, sealed with `keys`.
        case establish(SessionKeys)
        /// Close the connection, for this reason.
        case fail(String)
        /// Nothing: the handshake has already failed.
        case none
    }

    private enum State {
        case idle(nonce: [UInt8])
        case awaitingServerHello(clientNonce: [UInt8])
        case awaitingClientHello(serverNonce: [UInt8])
        case awaitingClientProof(clientNonce: [UInt8], serverNonce: [UInt8])
        case established
        case failed
    }

    static let nonceLength = 32
    static let proofLength = 32

    private let key: NetworkKey
    let role: Role
    private var state: State

    /// A handshake for `role`, with this end's fresh random `nonce`.
    init(key: NetworkKey, role: Role, nonce: [UInt8]) {
        self.key = key
        self.role = role
        self.state = role == .client ? .idle(nonce: nonce) : .awaitingClientHello(serverNonce: nonce)
    }

    /// Whether the handshake has succeeded.
    var isEstablished: Bool {
        if case .established = self.state { return true }
        return false
    }

    /// The connection is up: a client sends its nonce; a server waits.
    mutating func start() -> Action {
        guard case .idle(let nonce) = self.state else { return .none }
        self.state = .awaitingServerHello(clientNonce: nonce)
        return .send(nonce)
    }

    /// A frame arrived before the handshake ended: `payload` if it is a hello, `nil` for
    /// any other type.
    mutating func received(hello payload: [UInt8]?) -> Action {
        switch self.state {
        case .idle, .established, .failed:
            return self.fail(ifNotFailed: "a hello out of turn")
        case .awaitingServerHello(let clientNonce):
            guard let payload, payload.count == Self.nonceLength + Self.proofLength else {
                return self.fail(ifNotFailed: "the peer did not answer the handshake (no network key, or another one?)")
            }
            let serverNonce = Array(payload[..<Self.nonceLength])
            let proof = Array(payload[Self.nonceLength...])
            guard self.key.verify(proof: proof, role: "server", clientNonce: clientNonce, serverNonce: serverNonce)
            else {
                return self.fail(ifNotFailed: "the peer does not know the network key")
            }
            let mine = self.key.proof(role: "client", clientNonce: clientNonce, serverNonce: serverNonce)
            self.state = .established
            return .sendAndEstablish(mine, self.sessionKeys(clientNonce: clientNonce, serverNonce: serverNonce))
        case .awaitingClientHello(let serverNonce):
            guard let payload, payload.count == Self.nonceLength else {
                return self.fail(ifNotFailed: "refused a connection without the network key handshake")
            }
            let proof = self.key.proof(role: "server", clientNonce: payload, serverNonce: serverNonce)
            self.state = .awaitingClientProof(clientNonce: payload, serverNonce: serverNonce)
            return .send(serverNonce + proof)
        case .awaitingClientProof(let clientNonce, let serverNonce):
            guard let payload, payload.count == Self.proofLength,
                self.key.verify(proof: payload, role: "client", clientNonce: clientNonce, serverNonce: serverNonce)
            else {
                return self.fail(ifNotFailed: "refused a peer that does not know the network key")
            }
            self.state = .established
            return .establish(self.sessionKeys(clientNonce: clientNonce, serverNonce: serverNonce))
        }
    }

    /// The handshake did not finish in time, or the connection failed otherwise.
    mutating func fail(_ reason: String) -> Action {
        self.fail(ifNotFailed: reason)
    }

    private mutating func fail(ifNotFailed reason: String) -> Action {
        if case .failed = self.state { return .none }
        self.state = .failed
        return .fail(reason)
    }

    /// Each direction's key, HKDF(K, nonces); this end seals with its own direction's.
    private func sessionKeys(clientNonce: [UInt8], serverNonce: [UInt8]) -> SessionKeys {
        let toServer = self.key.sessionKey(
            direction: "client to server",
            clientNonce: clientNonce,
            serverNonce: serverNonce
        )
        let toClient = self.key.sessionKey(
            direction: "server to client",
            clientNonce: clientNonce,
            serverNonce: serverNonce
        )
        switch self.role {
        case .client: return SessionKeys(seal: toServer, open: toClient)
        case .server: return SessionKeys(seal: toClient, open: toServer)
        }
    }
}
