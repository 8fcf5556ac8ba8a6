import Logging
import NIOCore
import Testing

@testable import P2P

@Suite("Connect-back requests, over loopback")
struct ConnectBackProbeTests {
    static let logger = Logger(label: "p2p-test")

    /// Asks the server at `server` to connect back to `port`.
    static func ask(_ server: SocketAddress, port: Int) async throws -> TransferMessage {
        try await TransferClient.connect(to: server, settings: TransferSettings(logger: Self.logger)) { session in
            try await session.send(.connectBackRequest(port: port))
            return try await session.receive()
        }
    }

    @Test("a peer connects back to the asker's address and reports the answer; a closed port is reported as such")
    func connectsBack() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: Self.logger)
        let responder = SwarmResponder(
            store: store,
            statistics: TransferStatistics(),
            connectBack: ConnectBackProbe(settings: TransferSettings(logger: Self.logger), timeout: .seconds(2)),
            logger: Self.logger
        )
        try await TransferServer.withLoopback(responder) { server in
            // The asker's own listener, as `doctor` opens it.
            try await TransferServer.withLoopback(EmptyInventoryResponder()) { listener in
                let reached = try await Self.ask(server, port: try #require(listener.port))
                #expect(reached == .connectBackResult(reached: true, message: "answered with an inventory of 0 files"))
            }
            // Nothing listens on port 1 of loopback (only root could bind it, and nothing here does).
            let refused = try await Self.ask(server, port: 1)
            guard case .connectBackResult(let ok, let message) = refused else {
                Issue.record("expected a result, got \(refused)")
                return
            }
            #expect(!ok)
            #expect(!message.isEmpty)
        }
        await store.close()
    }

    @Test("a peer without a probe says so; a second request on one connection ends it")
    func withoutProbeAndOnce() async throws {
        let fixture = try StorageFixture()
        defer { fixture.remove() }
        let store = try await ChunkStore.open(configuration: fixture.configuration(), logger: Self.logger)
        let responder = SwarmResponder(store: store, statistics: TransferStatistics(), logger: Self.logger)
        try await TransferServer.withLoopback(responder) { server in
            let answer = try await Self.ask(server, port: 9)
            #expect(answer == .connectBackResult(reached: false, message: "this peer does not connect back"))
            await #expect(throws: (any Error).self) {
                try await TransferClient.connect(to: server, settings: TransferSettings(logger: Self.logger)) {
                    session in
                    try await session.send(.connectBackRequest(port: 9))
                    _ = try await session.receive()
                    try await session.send(.connectBackRequest(port: 9))
                    _ = try await session.receive()
                }
            }
        }
        await store.close()
    }
}
