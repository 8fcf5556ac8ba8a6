import Logging
import NIOCore
import NIOPosix
import P2P

/// A logger that drops everything, so test output stays readable.
let quietLogger = Logger(label: "p2p.tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// A UDP port that was free a moment ago on 127.0.0.1: a fresh discovery port per test, so
/// that tests (and anything else on this host) do not hear each other.
func freeUDPPort() async throws -> Int {
    let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0)
        .get()
    let port = channel.localAddress?.port ?? 0
    try await channel.close()
    return port
}

/// Discovery services running in child tasks, each of which a test can stop on its own.
struct RunningDiscovery: Sendable {
    let services: [PeerDiscovery]
    fileprivate let stops: [AsyncStream<Void>.Continuation]

    /// Cancels the task running service `index`; it announces `stop` on its way out.
    func stop(_ index: Int) {
        self.stops[index].finish()
    }

    /// Whether every service in `indices` knows every other one in `indices`, and no one else.
    func knowEachOther(_ indices: some Collection<Int>) -> Bool {
        indices.allSatisfy { index in
            let known = Set(self.services[index].table.all().map(\.id))
            let expected = Set(indices.filter { $0 != index }.map { self.services[$0].peerID })
            return known == expected
        }
    }
}

/// Runs one `PeerDiscovery` per transfer port on loopback only (`interfaceNames: ["lo"]`),
/// on `port`, while `body` runs; then cancels them all and waits for them to end.
func withDiscovery<Result: Sendable>(
    transferPorts: [Int],
    port: Int,
    announceInterval: TimeAmount = .milliseconds(200),
    networkKey: NetworkKey? = nil,
    _ body: (RunningDiscovery) async throws -> Result
) async throws -> Result {
    let configuration = DiscoveryConfiguration(
        port: port,
        announceInterval: announceInterval,
        interfaceNames: ["lo"]
    )
    let services = transferPorts.map {
        PeerDiscovery(
            peerID: .random(),
            transferPort: $0,
            configuration: configuration,
            networkKey: networkKey,
            logger: quietLogger
        )
    }
    let streams = services.map { _ in AsyncStream.makeStream(of: Void.self) }
    let running = RunningDiscovery(services: services, stops: streams.map(\.continuation))

    return try await withThrowingTaskGroup(of: Void.self) { group in
        for (service, stream) in zip(services, streams.map(\.stream)) {
            group.addTask {
                try await withThrowingTaskGroup(of: Void.self) { inner in
                    inner.addTask { try await service.run() }
                    // Ends when the test stops this service or the whole group is cancelled.
                    inner.addTask { for await _ in stream {} }
                    try await inner.next()
                    inner.cancelAll()
                    try await inner.waitForAll()
                }
            }
        }
        let result: Result
        do {
            result = try await body(running)
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
        try await group.waitForAll()
        return result
    }
}

/// A plain UDP socket on 127.0.0.1 that may broadcast, for sending test datagrams.
struct DatagramSender: Sendable {
    let channel: any Channel

    static func bind(host: String = "127.0.0.1") async throws -> DatagramSender {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_broadcast), value: 1)
            .bind(host: host, port: 0)
            .get()
        return DatagramSender(channel: channel)
    }

    /// The address datagrams from this socket come from.
    var address: SocketAddress { self.channel.localAddress! }

    func send(_ bytes: [UInt8], to address: SocketAddress) async throws {
        try await self.channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes)))
            .get()
    }

    func close() async {
        try? await self.channel.close()
    }
}
