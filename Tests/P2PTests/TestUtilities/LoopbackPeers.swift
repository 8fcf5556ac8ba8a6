import Logging
import NIOCore

@testable import P2P

extension TransferServer {
    /// A transfer server for `responder` on 127.0.0.1, on a port of the system's choosing.
    static func loopback(_ responder: any TransferResponder, logger: Logger) async throws -> TransferServer {
        try await TransferServer.bind(host: "127.0.0.1", port: 0, responder: responder, logger: logger)
    }
}

extension PeerTable {
    /// Records a peer that serves transfers on 127.0.0.1:`port`, as one announcement with
    /// an interval long enough that it never expires during a test.
    func recordLoopbackPeer(_ id: PeerID, transferPort port: Int) throws {
        self.record(
            Announcement(kind: .start, peerID: id, transferPort: UInt16(port), announceIntervalMilliseconds: 60_000),
            from: try SocketAddress(ipAddress: "127.0.0.1", port: 9)
        )
    }
}
