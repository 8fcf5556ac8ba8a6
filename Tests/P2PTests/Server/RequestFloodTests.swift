import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import P2P

/// The send and receive queues of an IPv4 TCP socket, from /proc/net/tcp (Linux): bytes
/// written but not yet acknowledged, and bytes received that the process has not read.
/// What a process has read is what reached its socket less what still waits in it, with no
/// hook in the code under test.
func tcpQueues(localPort: Int, remotePort: Int) -> (send: Int, receive: Int)? {
    // Read to the end: `String(contentsOfFile:)` stops after the first page of a /proc file.
    guard let handle = FileHandle(forReadingAtPath: "/proc/net/tcp"),
        let data = try? handle.readToEnd(),
        let table = String(data: data, encoding: .utf8)
    else { return nil }
    try? handle.close()
    let local = String(format: ":%04X", localPort)
    let remote = String(format: ":%04X", remotePort)
    for line in table.split(separator: "\n").dropFirst() {
        let fields = line.split(separator: " ")
        guard fields.count > 4, fields[1].hasSuffix(local), fields[2].hasSuffix(remote) else { continue }
        let queues = fields[4].split(separator: ":")
        guard queues.count == 2, let send = Int(queues[0], radix: 16), let receive = Int(queues[1], radix: 16) else {
            return nil
        }
        return (send, receive)
    }
    return nil
}

/// A client that sends chunk requests as fast as the server takes them and never reads an
/// answer: what a broken or hostile peer that pipelines without end looks like.
struct RequestFlood {
    /// Requests handed to this end's kernel in full; part of one more batch may have gone too.
    var written = 0
    /// Whether the writes stalled (the server stopped reading) rather than all going out.
    var stalled = false
    /// This end's port, to find the connection's sockets.
    var localPort = 0

    /// The requests in one write.
    static let batchSize = 1000
    /// The bytes of one request.
    static let requestLength = Frame.headerLength + FileID.byteCount

    /// Connects and floods until the server stops taking requests for `stall` or all
    /// `batches` are out; then runs `whileHeld` with the connection still open and unread,
    /// and closes it.
    static func run(
        to address: SocketAddress,
        id: FileID,
        batches: Int,
        stall: Duration = .seconds(2),
        whileHeld: @Sendable (RequestFlood) async throws -> Void
    ) async throws {
        var bytes = ByteBuffer()
        let request = TransferMessage.chunkRequest(id, chunk: 0).frame()
        for _ in 0..<Self.batchSize { request.write(to: &bytes) }
        // A plain channel, not an async one: its write future completes once the bytes are
        // in the kernel, so what was sent is known exactly. It never reads.
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: 16 * 1024)
            .channelOption(.socketOption(.so_sndbuf), value: 16 * 1024)
            .connect(to: address).get()
        do {
            var flood = RequestFlood(localPort: channel.localAddress?.port ?? 0)
            for _ in 0..<batches {
                let done = Mutex(false)
                channel.writeAndFlush(bytes).whenSuccess { done.withLock { $0 = true } }
                // A write that does not complete within `stall` means the server stopped reading.
                guard await poll(every: .milliseconds(5), timeout: stall, until: { done.withLock { $0 } }) else {
                    flood.stalled = true
                    break
                }
                flood.written += Self.batchSize
            }
            try await whileHeld(flood)
        } catch {
            try? await channel.close()
            throw error
        }
        try? await channel.close()
    }
}

extension TransferServerTests {
    @Test("a client that pipelines requests without end and reads nothing is held back; others are served")
    func requestFlood() async throws {
        let limits = TransferServer.Limits(maximumRequestsInFlight: 64)
        try await self.withServer(size: 2_000_000, limits: limits) { address, id, data in
            // 2,000,000 requests are 88 MB: far more than the kernel buffers of both ends.
            try await RequestFlood.run(to: address, id: id, batches: 2000) { flood in
                #expect(flood.stalled, "the server read all \(flood.written) requests")
                // What the server took in: what the client handed its kernel (up to a batch
                // more than the batches written in full, the last one stalled part way), less
                // what waits in the two sockets.
                let client = try #require(tcpQueues(localPort: flood.localPort, remotePort: address.port!))
                let server = try #require(tcpQueues(localPort: address.port!, remotePort: flood.localPort))
                let handed = (flood.written + RequestFlood.batchSize) * RequestFlood.requestLength
                let read = handed - client.send - server.receive
                // Measured: at most 86 KB (64 requests and the socket reads they came in) of
                // 264 KB sent, the rest in kernel buffers; with no limit (10^8), all 88 MB.
                #expect(read < 2 << 20, "the server read \(read) bytes of requests")
                // Another client is served in full while the flood is held open.
                try await TransferClient.connect(to: address, settings: .test) { session in
                    let manifest = try #require(try await session.manifest(for: id))
                    try await session.send((0..<manifest.chunkCount).map { .chunkRequest(id, chunk: $0) })
                    var joined: [UInt8] = []
                    for index in 0..<manifest.chunkCount {
                        guard case .chunkData(_, let chunk, let bytes) = try await session.receive(), chunk == index
                        else {
                            Issue.record("expected chunk \(index)")
                            return
                        }
                        joined += Array(bytes.readableBytesView)
                    }
                    #expect(joined == data)
                }
            }
            // And after it.
            try await TransferClient.connect(to: address, settings: .test) { session in
                let inventory = try await session.inventory()
                #expect(inventory.map(\.id) == [id])
            }
        }
    }
}
