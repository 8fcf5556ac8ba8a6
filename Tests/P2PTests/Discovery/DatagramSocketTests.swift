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
        for index in 0..<1024 {
            try await sender.send([UInt8(truncatingIfNeeded: index)], to: target)
        }
        let dropped = await poll(timeout: .seconds(5)) { drops.lastDrop != nil }
        #expect(dropped)
        #expect((drops.lastDrop ?? before) >= before)
        await sender.close()
        await socket.close()
        // What is left in the queue is the newest, at most the bound.
        var kept: [UInt8] = []
        for await envelope in socket.datagrams { kept.append(envelope.data.getInteger(at: 0, as: UInt8.self)!) }
        #expect(kept.count <= 512 && !kept.isEmpty, "\(kept.count)")
        #expect(kept.last == 255, "the newest datagram is kept")
    }
}
