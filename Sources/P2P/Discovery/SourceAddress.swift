import NIOCore

/// The IPv4 address this host sends from toward a target, which a keyed datagram names in
/// its seal (the receiver compares it with the source it sees).
///
/// For a broadcast, the address of the interface broadcast on; for a unicast target on a
/// network in scope, that network's address; for anything else, the kernel's choice, found
/// by connecting a UDP socket (which sends nothing) and reading its local address.
public enum SourceAddress {
    /// The address to name in a datagram to `target`.
    /// - Parameters:
    ///   - target: where the datagram goes.
    ///   - scope: the networks discovery works on.
    ///   - bindHost: the address the sockets are bound to; a specific one is the source.
    /// - Returns: the address, host byte order, or `nil` if the kernel has no route.
    public static func toward(_ target: SocketAddress, scope: NetworkScope, bindHost: String) -> UInt32? {
        if let bound = try? SocketAddress(ipAddress: bindHost, port: 0), let value = NetworkScope.ipv4(bound),
            value != 0
        {
            return value
        }
        guard let destination = NetworkScope.ipv4(target) else { return nil }
        if let network = scope.networks.first(where: { $0.broadcast == destination }) { return network.address }
        if let network = scope.networks.first(where: { $0.contains(destination) }) { return network.address }
        return KernelRoute.sourceAddress(toward: destination)
    }
}
