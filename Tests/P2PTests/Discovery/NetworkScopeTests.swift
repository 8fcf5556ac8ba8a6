import NIOCore
import P2P
import Testing

@Suite("NetworkScope")
struct NetworkScopeTests {
    /// 198.18.0.0/24, the benchmark range the testbed uses. No traffic goes anywhere here:
    /// these are only numbers.
    static let testbed = network(
        interfaceName: "br0",
        address: 0xC612_0001,
        netmask: 0xFFFF_FF00,
        broadcast: 0xC612_00FF
    )

    /// `Network` has public properties but no public initializer: start from the loopback
    /// network and change every field.
    static func network(
        interfaceName: String,
        address: UInt32,
        netmask: UInt32,
        broadcast: UInt32
    ) -> NetworkScope.Network {
        var network = NetworkScope.loopback
        network.interfaceName = interfaceName
        network.address = address
        network.netmask = netmask
        network.broadcast = broadcast
        return network
    }

    @Test(
        "a network contains exactly the addresses under its netmask",
        arguments: [
            (0xC612_0001 as UInt32, true),
            (0xC612_0000, true),
            (0xC612_00FE, true),
            (0xC612_00FF, true),
            (0xC612_0100, false),
            (0xC613_0001, false),
            (0x7F00_0001, false),
            (0x0000_0000, false),
        ]
    )
    func networkContains(address: UInt32, contained: Bool) {
        #expect(Self.testbed.contains(address) == contained)
    }

    @Test("loopback covers 127.0.0.0/8 and nothing else")
    func loopback() {
        #expect(NetworkScope.loopback.contains(0x7F00_0001))
        #expect(NetworkScope.loopback.contains(0x7FFF_FFFE))
        #expect(NetworkScope.loopback.contains(0x7F12_3456))
        #expect(!NetworkScope.loopback.contains(0x8000_0001))
        #expect(!NetworkScope.loopback.contains(0x7E00_0001))
        #expect(NetworkScope.loopback.broadcast == 0x7FFF_FFFF)
    }

    @Test("a scope contains IPv4 addresses on its networks only; never IPv6")
    func scopeContains() throws {
        let scope = NetworkScope(networks: [Self.testbed, NetworkScope.loopback])
        #expect(scope.contains(try SocketAddress(ipAddress: "198.18.0.77", port: 1)))
        #expect(scope.contains(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(!scope.contains(try SocketAddress(ipAddress: "198.18.1.77", port: 1)))
        #expect(!scope.contains(try SocketAddress(ipAddress: "::1", port: 1)))
        #expect(scope.broadcastReaches(try SocketAddress(ipAddress: "198.18.0.9", port: 1)))
        #expect(!scope.broadcastReaches(try SocketAddress(ipAddress: "198.19.0.9", port: 1)))
        #expect(!NetworkScope(networks: []).contains(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
    }

    @Test("broadcast targets: one per distinct broadcast address, in order, on the given port")
    func broadcastTargets() throws {
        var sameSegment = Self.testbed
        sameSegment.interfaceName = "br0:1"
        sameSegment.address = 0xC612_0002
        var otherLoopback = NetworkScope.loopback
        otherLoopback.interfaceName = "lo:1"
        let scope = NetworkScope(networks: [Self.testbed, NetworkScope.loopback, sameSegment, otherLoopback])
        #expect(
            scope.broadcastTargets(port: 47_474) == [
                try SocketAddress(ipAddress: "198.18.0.255", port: 47_474),
                try SocketAddress(ipAddress: "127.255.255.255", port: 47_474),
            ]
        )
        #expect(NetworkScope(networks: []).broadcastTargets(port: 1).isEmpty)
    }

    @Test(
        "dottedQuad and ipv4 convert both ways",
        arguments: [
            (0 as UInt32, "0.0.0.0"),
            (0x7F00_0001, "127.0.0.1"),
            (0x7FFF_FFFF, "127.255.255.255"),
            (0xC612_00FF, "198.18.0.255"),
            (0x0102_0304, "1.2.3.4"),
            (0xFFFF_FFFF, "255.255.255.255"),
        ]
    )
    func knownConversions(value: UInt32, text: String) throws {
        #expect(NetworkScope.dottedQuad(value) == text)
        #expect(NetworkScope.ipv4(try SocketAddress(ipAddress: text, port: 9)) == value)
    }

    @Test("random addresses survive dottedQuad then ipv4")
    func randomConversions() throws {
        var generator = SeededGenerator(seed: 0x1F4)
        for _ in 0..<1000 {
            let value = UInt32.random(in: 0...UInt32.max, using: &generator)
            let address = try SocketAddress(ipAddress: NetworkScope.dottedQuad(value), port: 0)
            #expect(NetworkScope.ipv4(address) == value)
        }
    }

    @Test("ipv4 of an IPv6 address is nil")
    func ipv6() throws {
        #expect(NetworkScope.ipv4(try SocketAddress(ipAddress: "::1", port: 9)) == nil)
        #expect(NetworkScope.ipv4(try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 9)) == nil)
    }

    @Test("the scope of interface lo is the loopback network alone, broadcasting to 127.255.255.255")
    func currentLoopback() throws {
        let scope = try NetworkScope.current(interfaceNames: ["lo"])
        #expect(scope.networks == [NetworkScope.loopback])
        #expect(scope.broadcastTargets(port: 4242) == [try SocketAddress(ipAddress: "127.255.255.255", port: 4242)])
        #expect(scope.contains(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
    }

    @Test("an interface that does not exist gives an empty scope")
    func currentMissing() throws {
        let scope = try NetworkScope.current(interfaceNames: ["p2p-no-such0"])
        #expect(scope.networks.isEmpty)
        #expect(scope.broadcastTargets(port: 1).isEmpty)
    }

    @Test("every IPv4 network in the full scope has its own address on it")
    func currentAll() throws {
        let scope = try NetworkScope.current(interfaceNames: [])
        #expect(scope.networks.contains(NetworkScope.loopback))
        for network in scope.networks {
            #expect(network.contains(network.address), "\(network)")
            #expect(network.contains(network.broadcast), "\(network)")
        }
    }

    @Test("this machine's local addresses include 127.0.0.1")
    func localAddresses() {
        #expect(NetworkScope.localAddresses().contains(0x7F00_0001))
    }
}
