import Crypto
import CryptoExtras
import Foundation

/// A swarm's shared secret (`--secret`), and the keys derived from it.
///
/// The secret itself is never sent. Anyone who captures one keyed discovery datagram can
/// test guesses of the secret offline, so the secret first goes through scrypt, a
/// memory-hard password KDF, once at start (`scryptCost`: each guess then costs tens of
/// milliseconds and 16 MiB of memory instead of about 15 microseconds). HKDF-SHA-256 then
/// expands that root key into one key that authenticates discovery datagrams
/// (HMAC-SHA-256), one that the transfer handshake proves knowledge of and one that
/// authenticates delivery receipts; each transfer connection derives its own session keys
/// from both sides' fresh nonces. HKDF itself stretches nothing: the work is scrypt's.
public struct NetworkKey: Sendable {
    /// Authenticates discovery datagrams.
    let discoveryKey: SymmetricKey
    /// Proves membership in the transfer handshake and seeds session keys.
    let transferKey: SymmetricKey
    /// Authenticates delivery receipts (`DeliveryReceipt`).
    let receiptKey: SymmetricKey
    /// Why the secret is easy to guess, to warn about; `nil` for a strong one.
    public let weakness: String?

    /// Bytes of the HMAC tag appended to each discovery datagram.
    public static let discoveryTagLength = 32

    /// scrypt's parameters: N (CPU and memory cost), r (block size), p (parallelism).
    /// Memory is 128·N·r bytes: 16 MiB here, so a peer's peak stays well under 64 MiB.
    public static let scryptCost = (rounds: 1 << 14, blockSize: 8, parallelism: 1)
    /// The salt of the root key. Peers share nothing but the secret, so the salt is the
    /// protocol's own: it keeps precomputed tables for other uses of scrypt useless.
    public static let scryptSalt = Array("p2p network key v2 (scrypt)".utf8)
    /// Secrets shorter than this are reported weak.
    public static let minimumStrongLength = 16
    /// Secrets with fewer distinct characters than this are reported weak.
    public static let minimumDistinctCharacters = 8
    /// What a key from `generate()` starts with.
    public static let generatedPrefix = "p2pk-"

    /// Derives the keys from a secret: scrypt, then HKDF. Takes a noticeable moment by
    /// design; do it once.
    /// - Parameter secret: the shared secret; at least 8 bytes.
    /// - Throws: `P2PError` (`invalidArgument`) for a secret that is too short.
    public init(secret: String) throws(P2PError) {
        try Self.check(secret)
        let root: SymmetricKey
        do {
            root = try KDF.Scrypt.deriveKey(
                from: Array(secret.utf8),
                salt: Self.scryptSalt,
                outputByteCount: 32,
                rounds: Self.scryptCost.rounds,
                blockSize: Self.scryptCost.blockSize,
                parallelism: Self.scryptCost.parallelism
            )
        } catch {
            throw P2PError(code: .invalidArgument, "cannot derive the network key: \(error)")
        }
        self.init(root: root, weakness: Self.weakness(of: secret))
    }

    /// The keys expanded from a root key.
    init(root: SymmetricKey, weakness: String?) {
        self.discoveryKey = HKDF<SHA256>.expand(
            pseudoRandomKey: root,
            info: Array("discovery".utf8),
            outputByteCount: 32
        )
        self.transferKey = HKDF<SHA256>.expand(
            pseudoRandomKey: root,
            info: Array("transfer".utf8),
            outputByteCount: 32
        )
        self.receiptKey = HKDF<SHA256>.expand(
            pseudoRandomKey: root,
            info: Array("delivery receipt".utf8),
            outputByteCount: 32
        )
        self.weakness = weakness
    }

    /// Checks a secret's length without deriving anything, for early validation.
    /// - Parameter secret: the secret.
    /// - Throws: `P2PError` (`invalidArgument`) for a secret shorter than 8 bytes.
    public static func check(_ secret: String) throws(P2PError) {
        guard secret.utf8.count >= 8 else {
            throw P2PError(code: .invalidArgument, "the network secret must be at least 8 bytes long")
        }
    }

    /// A fresh random key: 32 bytes from the system's generator, as `p2pk-` and base64url.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let base64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return Self.generatedPrefix + base64
    }

    /// Whether `secret` has the form `generate()` gives: `p2pk-` and 43 base64url characters.
    public static func isGenerated(_ secret: String) -> Bool {
        guard secret.hasPrefix(Self.generatedPrefix) else { return false }
        let body = secret.dropFirst(Self.generatedPrefix.count)
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        return body.count == 43 && body.allSatisfy { alphabet.contains($0) }
    }

    /// Why a secret is easy to guess, or `nil`: a simple, honest estimate that flags short
    /// secrets and those of few distinct characters; a generated key is never weak.
    /// - Parameter secret: the secret.
    /// - Returns: a warning to show, or `nil`.
    public static func weakness(of secret: String) -> String? {
        if Self.isGenerated(secret) { return nil }
        let length = secret.count
        let distinct = Set(secret).count
        guard length < Self.minimumStrongLength || distinct < Self.minimumDistinctCharacters else { return nil }
        return "the network secret is weak (\(length) characters, \(distinct) distinct): anyone who captures"
            + " one discovery datagram can guess it offline; use at least \(Self.minimumStrongLength) varied"
            + " characters, or a key from 'p2p key'"
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
