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
        // A sockaddr_in laid out by hand (family, port and address at their fixed offsets):
        // its C members are reachable through more than one module here, which the
        // compiler does not always accept.
        var remote = [UInt8](repeating: 0, count: Self.socketAddressLength)
        remote.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: sa_family_t(AF_INET), toByteOffset: 0, as: sa_family_t.self)
            bytes.storeBytes(of: UInt16(9).bigEndian, toByteOffset: 2, as: UInt16.self)
            bytes.storeBytes(of: destination.bigEndian, toByteOffset: 4, as: UInt32.self)
        }
        let length = socklen_t(Self.socketAddressLength)
        let connected = remote.withUnsafeBytes { bytes in
            connect(descriptor, bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
        guard connected == 0 else { return nil }
        var local = [UInt8](repeating: 0, count: Self.socketAddressLength)
        var localLength = length
        let named = local.withUnsafeMutableBytes { bytes in
            getsockname(descriptor, bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self), &localLength)
        }
        guard named == 0 else { return nil }
        return local.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) }
    }

    /// The size of a sockaddr_in.
    private static let socketAddressLength = 16
}
