import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Free ports for tests that run in parallel, each with a swarm of its own.
enum FreePort {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Ports already handed out in this test run, so two tests never share one.
    private static let handedOut = Mutex(Set<Int>())

    /// A UDP port that nothing on this host is bound to now, for a swarm's discovery port.
    ///
    /// Found by binding 127.0.0.1:0 and reading the port back. The kernel picks it from
    /// the ephemeral range, where the peers' own private sockets also get theirs, so a
    /// port is also checked on 0.0.0.0 (what the peers bind) and never handed out twice.
    /// - Returns: the port.
    /// - Throws: `Failure` if no port is found in a few tries.
    static func udp() throws -> Int {
        for _ in 0..<20 {
            let port = try self.bindAndRelease(host: INADDR_LOOPBACK, port: 0, type: SOCK_DGRAM)
            guard (try? self.bindAndRelease(host: INADDR_ANY, port: port, type: SOCK_DGRAM)) != nil else { continue }
            if self.handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw Failure(description: "no free UDP port found on 127.0.0.1")
    }

    /// Binds a socket of `type` to `host:port`, reads the port bound, and closes it.
    private static func bindAndRelease(host: UInt32, port: Int, type: __socket_type) throws -> Int {
        let descriptor = socket(AF_INET, Int32(type.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket(): errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: host.bigEndian)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw Failure(description: "bind(): errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw Failure(description: "getsockname(): errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
