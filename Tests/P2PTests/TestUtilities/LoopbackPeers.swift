import Logging
import NIOCore
import Synchronization

@testable import P2P

extension TransferServer {
    /// A transfer server for `responder` on 127.0.0.1, on a port of the system's choosing.
    static func loopback(
        _ responder: any TransferResponder,
        limits: Limits = Limits(),
        logger: Logger
    ) async throws -> TransferServer {
        try await TransferServer.bind(
            host: "127.0.0.1",
            port: 0,
            settings: TransferSettings(logger: logger),
            limits: limits,
            responder: responder
        )
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

extension TransferServer {
    /// Runs a transfer server for `responder` on 127.0.0.1 for the duration of `body`,
    /// which is given its address.
    static func withLoopback<Result: Sendable>(
        _ responder: some TransferResponder,
        limits: Limits = Limits(),
        _ body: (SocketAddress) async throws -> Result
    ) async throws -> Result {
        let server = try await TransferServer.loopback(responder, limits: limits, logger: Logger(label: "p2p-test"))
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            return try await body(address)
        }
    }
}

/// Answers every inventory request with one prepared frame, `delay` late, and counts how
/// many requests wait at once.
struct InventoryAnswering: TransferResponder {
    /// The answer: an empty inventory unless given.
    var frame = TransferMessage.inventory([]).frame()
    /// How long each answer takes.
    var delay: Duration = .zero
    /// Counts the requests being answered at once, if given.
    var counter: ConcurrencyCounter? = nil

    func serve(
        inbound: NIOAsyncChannelInboundStream<Frame>,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?,
        channel: any Channel
    ) async throws {
        for try await _ in inbound {
            self.counter?.enter()
            if self.delay > .zero { try? await Task.sleep(for: self.delay) }
            self.counter?.leave()
            try await outbound.write(self.frame)
        }
    }
}

/// How many things are under way at once, and the most there were.
final class ConcurrencyCounter: Sendable {
    private let state = Mutex((now: 0, peak: 0))

    func enter() {
        self.state.withLock {
            $0.now += 1
            $0.peak = max($0.peak, $0.now)
        }
    }

    func leave() { self.state.withLock { $0.now -= 1 } }

    var peak: Int { self.state.withLock { $0.peak } }
}

extension TransferSettings {
    /// The settings of a test's connections: an open swarm, the default frame limit.
    static let test = TransferSettings(logger: Logger(label: "p2p-test"))

    /// The settings of a test's connections in a swarm with `key`.
    static func test(key: NetworkKey?) -> TransferSettings {
        TransferSettings(networkKey: key, logger: Logger(label: "p2p-test"))
    }
}
