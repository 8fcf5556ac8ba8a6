#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A plain UDP socket with SO_BROADCAST, for sending hand-made datagrams to loopback
/// addresses (never anywhere else).
final class DatagramSender {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let descriptor: Int32

    /// Opens the socket.
    /// - Parameter bindHost: a loopback address to send from, such as 127.1.0.7; by default
    ///   the kernel's choice.
    /// - Throws: `Failure` if it cannot be opened or bound.
    init(bindHost: String? = nil) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket(): errno \(errno)") }
        var on: Int32 = 1
        guard setsockopt(descriptor, SOL_SOCKET, SO_BROADCAST, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            close(descriptor)
            throw Failure(description: "setsockopt(SO_BROADCAST): errno \(errno)")
        }
        if let bindHost {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            guard inet_pton(AF_INET, bindHost, &local.sin_addr) == 1,
                UInt32(bigEndian: local.sin_addr.s_addr) >> 24 == 127
            else {
                close(descriptor)
                throw Failure(description: "\(bindHost) is not a loopback address")
            }
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else {
                close(descriptor)
                throw Failure(description: "bind(\(bindHost)): errno \(errno)")
            }
        }
        self.descriptor = descriptor
    }

    deinit {
        close(self.descriptor)
    }

    /// Sends one datagram.
    /// - Parameters:
    ///   - bytes: the payload.
    ///   - host: a dotted-quad loopback address, such as 127.0.0.1 or 127.255.255.255.
    ///   - port: the destination port.
    /// - Throws: `Failure` if the address is not loopback or the send fails.
    func send(_ bytes: [UInt8], to host: String, port: Int) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw Failure(description: "bad IPv4 address \(host)")
        }
        // Test traffic stays on this host.
        guard UInt32(bigEndian: address.sin_addr.s_addr) >> 24 == 127 else {
            throw Failure(description: "\(host) is not a loopback address")
        }
        let sent = bytes.withUnsafeBytes { payload in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(
                        self.descriptor,
                        payload.baseAddress,
                        payload.count,
                        0,
                        $0,
                        socklen_t(MemoryLayout<sockaddr_in>.size)
                    )
                }
            }
        }
        guard sent == bytes.count else { throw Failure(description: "sendto(\(host):\(port)): errno \(errno)") }
    }
}
