import NIOCore
import NIOPosix
import Testing

@testable import P2P

/// The discovery socket's bounded queue: what it does when nobody keeps up.
@Suite("DatagramSocket")
struct DatagramSocketTests {
    @Test("datagrams nobody reads are dropped past the bound, and the drop is recorded")
    func dropsAreRecorded() async throws {
        let drops = DatagramSocket.Drops()
        let socket = try await DatagramSocket.bind(
            host: "127.0.0.1",
            port: 0,
            shared: false,
            group: MultiThreadedEventLoopGroup.singleton,
            drops: drops
        )
        let sender = try await DatagramSender.bind()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: socket.localPort)
        #expect(drops.lastDrop == nil)
        let before = NIODeadline.now()
        // Twice the queue's bound, with nobody reading.
        for index in 0..<1024 as Range<UInt16> {
            try await sender.send([UInt8(index >> 8), UInt8(index & 0xFF)], to: target)
        }
        let dropped = await poll(timeout: .seconds(5)) { drops.lastDrop != nil }
        #expect(dropped)
        #expect((drops.lastDrop ?? before) >= before)
        // Time for the socket to read what the kernel still holds.
        try await Task.sleep(for: .milliseconds(200))
        await sender.close()
        await socket.close()
        // What is left in the queue is at most the bound, in order, and the newest: the
        // oldest went first (a few may have been dropped by the kernel on the way).
        var kept: [UInt16] = []
        for await envelope in socket.datagrams { kept.append(envelope.data.getInteger(at: 0, as: UInt16.self)!) }
        #expect(kept.count <= 512 && !kept.isEmpty, "\(kept.count)")
        #expect(kept == kept.sorted())
        #expect((kept.first ?? 0) > 400, "kept from \(kept.first ?? 0)")
    }
}
