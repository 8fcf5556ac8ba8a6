import NIOCore

/// Where the HTTP gateway listens, from `--http [ADDRESS:]PORT`, and whether that address
/// is reachable only from this host.
///
/// Only numeric addresses (and `localhost`) are taken: a name that resolves elsewhere
/// tomorrow must not quietly widen who can reach the gateway.
public struct GatewayAddress: Sendable, Equatable, CustomStringConvertible {
    /// The address bound: an IPv4 or IPv6 literal.
    public var host: String
    /// The port bound; zero for any free port.
    public var port: Int

    /// The address a bare port means: loopback, this host only.
    public static let defaultHost = "127.0.0.1"

    /// Parses `PORT`, `ADDRESS:PORT` or `[IPV6]:PORT`.
    /// - Parameter text: the option's value.
    /// - Throws: `GatewayAddress.Error` saying what is wrong.
    public init(parsing text: String) throws(GatewayAddress.Error) {
        var host = Self.defaultHost
        var portText = Substring(text)
        if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if host == "localhost" { host = Self.defaultHost }
            guard (try? SocketAddress(ipAddress: host, port: 0)) != nil else {
                throw Error("--http takes [ADDRESS:]PORT with a numeric address, such as 127.0.0.1:8080; got '\(text)'")
            }
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw Error("--http takes [ADDRESS:]PORT with a port from 0 to 65535, such as 8080; got '\(text)'")
        }
        self.host = host
        self.port = port
    }

    /// Whether only this host can reach the address: 127.0.0.0/8 or `::1`.
    public var isLoopback: Bool {
        if self.host == "::1" { return true }
        guard let address = try? SocketAddress(ipAddress: self.host, port: 0), case .v4 = address else { return false }
        return self.host.split(separator: ".").first == "127"
    }

    /// Why the gateway may not listen here, if it may not: an address other hosts can reach
    /// serves only a swarm with a network key, which clients then present.
    /// - Parameter hasNetworkKey: whether the peer runs with `--secret`.
    /// - Returns: the reason, or `nil` when the address is allowed.
    public func refusal(hasNetworkKey: Bool) -> String? {
        guard !self.isLoopback && !hasNetworkKey else { return nil }
        return "--http \(self) is reachable from other hosts: give the swarm a network key (--secret), "
            + "which HTTP clients then present as 'Authorization: Bearer KEY', or listen on loopback"
    }

    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// A malformed `--http` value.
    public struct Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        /// What is wrong, and an example of what is right.
        public var message: String

        init(_ message: String) { self.message = message }

        public var description: String { self.message }
    }
}
