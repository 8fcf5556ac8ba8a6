#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the kernel's routing table says, asked without sending anything.
enum KernelRoute {
    /// The kernel's source address toward `destination` (host byte order): a UDP socket's
    /// `connect` picks the route and source without sending anything.
    /// - Parameter destination: the IPv4 address.
    /// - Returns: the source, or `nil` if there is no route.
    static func sourceAddress(toward destination: UInt32) -> UInt32? {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_DGRAM, 0)
        #endif
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(9).bigEndian)
        remote.sin_addr.s_addr = destination.bigEndian
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, length) }
        }
        guard connected == 0 else { return nil }
        var local = sockaddr_in()
        var localLength = length
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &localLength) }
        }
        guard named == 0 else { return nil }
        return UInt32(bigEndian: local.sin_addr.s_addr)
    }
}
