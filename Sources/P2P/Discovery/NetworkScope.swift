import NIOCore
import NIOPosix

/// The IPv4 networks discovery works on: where announcements are broadcast, and whose
/// datagrams are listened to.
///
/// Built from the machine's interfaces each time it is needed, because interfaces come and
/// go (a laptop joins Wi-Fi, a VPN comes up). With interface names given, only those are
/// used: `lo` alone keeps every datagram on this host.
public struct NetworkScope: Sendable, Equatable {
    /// One IPv4 network: an interface's address and netmask, and where to broadcast on it.
    public struct Network: Sendable, Equatable {
        /// The interface's name, such as `eth0` or `lo`.
        public var interfaceName: String
        /// The interface's IPv4 address, host byte order.
        public var address: UInt32
        /// The netmask, host byte order.
        public var netmask: UInt32
        /// The broadcast address, host byte order.
        public var broadcast: UInt32

        /// Whether `candidate` (host byte order) is on this network.
        public func contains(_ candidate: UInt32) -> Bool {
            candidate & self.netmask == self.address & self.netmask
        }
    }

    /// The networks in scope.
    public var networks: [Network]

    /// Creates a scope from networks.
    /// - Parameter networks: the networks.
    public init(networks: [Network]) {
        self.networks = networks
    }

    /// The loopback network: 127.0.0.0/8, broadcast 127.255.255.255. Linux routes that
    /// address to every socket bound to the port on this host.
    public static let loopback = Network(
        interfaceName: "lo",
        address: 0x7F00_0001,
        netmask: 0xFF00_0000,
        broadcast: 0x7FFF_FFFF
    )

    /// The scope from this machine's interfaces now.
    /// - Parameter interfaceNames: the interfaces to use; empty means every IPv4 interface.
    /// - Returns: the scope; it may be empty if no named interface has an IPv4 address.
    /// - Throws: if the interfaces cannot be listed.
    public static func current(interfaceNames: [String]) throws -> NetworkScope {
        var networks: [Network] = []
        for device in try System.enumerateDevices() {
            if !interfaceNames.isEmpty && !interfaceNames.contains(device.name) { continue }
            // Entries with no address, IPv6 ones and point-to-point links are skipped.
            guard let address = device.address.flatMap(Self.ipv4), let netmask = device.netmask.flatMap(Self.ipv4)
            else { continue }
            if address >> 24 == 127 {
                if !networks.contains(where: { $0.interfaceName == device.name && $0.address == address }) {
                    var loopback = Self.loopback
                    loopback.interfaceName = device.name
                    networks.append(loopback)
                }
                continue
            }
            guard let broadcast = device.broadcastAddress.flatMap(Self.ipv4) else { continue }
            networks.append(
                Network(interfaceName: device.name, address: address, netmask: netmask, broadcast: broadcast)
            )
        }
        return NetworkScope(networks: networks)
    }

    /// Where to send a broadcast announcement: each network's broadcast address, once.
    /// - Parameter port: the discovery port.
    /// - Returns: one address per distinct broadcast address.
    public func broadcastTargets(port: Int) -> [SocketAddress] {
        var seen = Set<UInt32>()
        var targets: [SocketAddress] = []
        for network in self.networks where seen.insert(network.broadcast).inserted {
            if let address = try? SocketAddress(ipAddress: Self.dottedQuad(network.broadcast), port: port) {
                targets.append(address)
            }
        }
        return targets
    }

    /// Whether a datagram from `address` comes from a network in scope. Datagrams from
    /// anywhere else are ignored, so a peer limited to `lo` never answers a host outside.
    /// - Parameter address: the sender.
    public func contains(_ address: SocketAddress) -> Bool {
        guard let value = Self.ipv4(address) else { return false }
        return self.networks.contains { $0.contains(value) }
    }

    /// Whether a broadcast in this scope reaches `address`; peers it does not reach are
    /// sent their announcements by unicast.
    /// - Parameter address: a peer's address.
    public func broadcastReaches(_ address: SocketAddress) -> Bool {
        self.contains(address)
    }

    /// The IPv4 address of `address`, host byte order, or `nil` if it is not IPv4.
    public static func ipv4(_ address: SocketAddress) -> UInt32? {
        guard case .v4 = address, let text = address.ipAddress else { return nil }
        let parts = text.split(separator: ".").compactMap { UInt32($0) }
        guard parts.count == 4, parts.allSatisfy({ $0 < 256 }) else { return nil }
        return parts.reduce(0) { $0 << 8 | $1 }
    }

    /// `a.b.c.d` for an address in host byte order.
    public static func dottedQuad(_ value: UInt32) -> String {
        "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
    }
}

extension NetworkScope {
    /// Every IPv4 address of this machine's interfaces, host byte order: a datagram sent to
    /// one of them was meant for this host alone, not broadcast.
    /// - Returns: the addresses; empty if the interfaces cannot be listed.
    public static func localAddresses() -> Set<UInt32> {
        guard let devices = try? System.enumerateDevices() else { return [] }
        return Set(devices.compactMap { $0.address.flatMap(Self.ipv4) })
    }
}
