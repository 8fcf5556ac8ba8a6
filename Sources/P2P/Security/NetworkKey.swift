import Crypto
import Foundation

/// A swarm's shared secret (`--secret`), and the keys derived from it.
///
/// The secret itself is never sent. HKDF-SHA-256 derives one key that authenticates
/// discovery datagrams (HMAC-SHA-256) and one that the transfer handshake proves
/// knowledge of; each transfer connection then derives its own session keys from both
/// sides' fresh nonces.
public struct NetworkKey: Sendable {
    /// Authenticates discovery datagrams.
    let discoveryKey: SymmetricKey
    /// Proves membership in the transfer handshake and seeds session keys.
    let transferKey: SymmetricKey

    /// Bytes of the HMAC tag appended to each discovery datagram.
    public static let discoveryTagLength = 32

    /// Derives the keys from a secret.
    /// - Parameter secret: the shared secret; at least 8 bytes.
    /// - Throws: `P2PError` (`invalidArgument`) for a secret that is too short.
    public init(secret: String) throws(P2PError) {
        let bytes = Array(secret.utf8)
        guard bytes.count >= 8 else {
            throw P2PError(code: .invalidArgument, "the network secret must be at least 8 bytes long")
        }
        let material = SymmetricKey(data: bytes)
        let salt = Array("p2p network key v1".utf8)
        self.discoveryKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: material,
            salt: salt,
            info: Array("discovery".utf8),
            outputByteCount: 32
        )
        self.transferKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: material,
            salt: salt,
            info: Array("transfer".utf8),
            outputByteCount: 32
        )
    }

    /// The discovery tag of `datagram`.
    func tag(discovery datagram: UnsafeRawBufferPointer) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: datagram, using: self.discoveryKey))
    }

    /// Whether `tag` authenticates `datagram`, compared in constant time.
    func verify(tag: [UInt8], discovery datagram: UnsafeRawBufferPointer) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: Data(datagram), using: self.discoveryKey)
    }

    /// A handshake proof: HMAC of the role and both nonces under the transfer key.
    func proof(role: String, clientNonce: [UInt8], serverNonce: [UInt8]) -> [UInt8] {
        Array(
            HMAC<SHA256>.authenticationCode(for: Array(role.utf8) + clientNonce + serverNonce, using: self.transferKey)
        )
    }

    /// Whether `proof` is the right one, compared in constant time.
    func verify(proof: [UInt8], role: String, clientNonce: [UInt8], serverNonce: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(
            proof,
            authenticating: Array(role.utf8) + clientNonce + serverNonce,
            using: self.transferKey
        )
    }

    /// The session key for one direction of a connection.
    func sessionKey(direction: String, clientNonce: [UInt8], serverNonce: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: self.transferKey,
            salt: clientNonce + serverNonce,
            info: Array("session \(direction)".utf8),
            outputByteCount: 32
        )
    }
}
