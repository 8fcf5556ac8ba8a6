import Crypto

/// Whether an HTTP request presents the network key as `Authorization: Bearer KEY`.
///
/// Both sides are hashed before they are compared, and digests compare in constant time,
/// so neither the key's length nor how much of a guess matched shows in the time taken.
public struct BearerCheck: Sendable {
    private let expected: SHA256Digest?

    /// A check for `secret`; with `nil` every request passes (a loopback gateway of a swarm
    /// without a key).
    /// - Parameter secret: the network key as the user gave it.
    public init(secret: String?) {
        self.expected = secret.map { SHA256.hash(data: Array($0.utf8)) }
    }

    /// Whether a key is required at all.
    public var isRequired: Bool { self.expected != nil }

    /// Whether an `Authorization` header value admits the request.
    /// - Parameter authorization: the header's value, if the request has one.
    /// - Returns: true when no key is required or the header carries it.
    public func admits(_ authorization: String?) -> Bool {
        guard let expected = self.expected else { return true }
        guard let authorization else { return false }
        let scheme = "bearer "
        guard authorization.count > scheme.count, authorization.prefix(scheme.count).lowercased() == scheme else {
            return false
        }
        let token = authorization.dropFirst(scheme.count).drop(while: { $0 == " " })
        return SHA256.hash(data: Array(token.utf8)) == expected
    }
}
