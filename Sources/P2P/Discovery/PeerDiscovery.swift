import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Finds the other peers of the swarm by UDP broadcast (the seed's `PeerDiscovery`).
///
/// Two sockets: one bound to the shared discovery port with SO_REUSEADDR, which hears
/// every broadcast (Linux hands a broadcast to every socket bound to the port, so several
/// peers on one host all hear it), and one on a private port of its own, which sends every
/// announcement and receives the unicast answers (a unicast to the shared port would reach
/// only one of the peers bound there).
///
/// At start a peer broadcasts `start`, and everyone who hears it answers with a unicast
/// `alive`, so a newcomer knows the swarm at once. Then `alive` goes out every announce
/// interval; a peer not heard from for three of its intervals is dropped; `stop` on
/// graceful shutdown removes the peer everywhere at once.
public final class PeerDiscovery: Service, Sendable {
    /// Counters, for logs and tests.
    public struct Statistics: Sendable, Equatable {
        /// Datagrams that parsed and were accepted.
        public var accepted = 0
        /// Datagrams that were not valid announcements.
        public var malformed = 0
        /// Broadcasts from outside the interfaces in scope.
        public var outOfScope = 0
        /// This peer's own broadcasts, heard back.
        public var ownEchoes = 0
        /// Sends that failed.
        public var sendFailures = 0
    }

    /// This peer's id.
    public let peerID: PeerID
    /// The peers found.
    public let table: PeerTable
    /// The configuration.
    public let configuration: DiscoveryConfiguration

    private let transferPort: UInt16
    private let group: any EventLoopGroup
    private let logger: Logger
    private let statisticsBox = Mutex(Statistics())
    private let privateSocket = Mutex<DatagramSocket?>(nil)
    private let scope = Mutex(NetworkScope(networks: []))
    private let localAddresses = Mutex(Set<UInt32>())
    /// Set once `stop` is sent, so that the closing sockets are not bound again.
    private let stopping = Mutex(false)
    /// Senders already logged for lacking the network key, so each is logged once.
    private let refusedSenders = Mutex(Set<String>())

    /// Creates a discovery service; nothing happens until `run()`.
    /// - Parameters:
    ///   - peerID: this peer's id.
    ///   - transferPort: the TCP port to announce; zero for an observer that serves nothing.
    ///   - configuration: ports, interval, interfaces.
    ///   - table: where found peers go.
    ///   - group: the event loops for the sockets.
    ///   - logger: where to log.
    public init(
        peerID: PeerID,
        transferPort: Int,
        configuration: DiscoveryConfiguration,
        table: PeerTable = PeerTable(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.peerID = peerID
        self.transferPort = UInt16(clamping: transferPort)
        self.configuration = configuration
        self.table = table
        self.group = group
        var logger = logger
        logger[metadataKey: "peer.id"] = "\(peerID.short)"
        self.logger = logger
    }

    /// The counters so far.
    public var statistics: Statistics { self.statisticsBox.withLock { $0 } }

    /// Binds the shared discovery port, or throws the bind error; use it to fail fast
    /// with a clear message before other services start.
    /// - Returns: the bound socket, to be handed to `run(sharedSocket:)`.
    func bindSharedSocket() async throws -> DatagramSocket {
        do {
            return try await DatagramSocket.bind(
                host: self.configuration.bindHost,
                port: self.configuration.port,
                shared: true,
                group: self.group
            )
        } catch {
            throw P2PError(
                code: .portUnavailable,
                "cannot listen for discovery on UDP port \(self.configuration.port): \(error)"
            )
        }
    }

    /// Runs discovery until graceful shutdown or cancellation; on graceful shutdown
    /// announces `stop` first.
    /// - Throws: `P2PError` if the discovery port cannot be bound.
    public func run() async throws {
        try await self.run(sharedSocket: self.bindSharedSocket())
    }

    /// Runs discovery on a shared socket bound beforehand by `bindSharedSocket()`.
    func run(sharedSocket shared: DatagramSocket) async throws {
        self.refreshScope()
        let privateSocket = try await self.bindPrivateSocket()
        self.logger.info(
            "discovery started",
            metadata: [
                "discovery.port": "\(self.configuration.port)",
                "discovery.interfaces": "\(self.scope.withLock { $0.networks.map(\.interfaceName) })",
            ]
        )
        await withDiscardingTaskGroup { group in
            group.addTask { await self.receive(from: shared, isShared: true) }
            group.addTask { await self.keepPrivateSocket(privateSocket) }
            group.addTask { await self.expireSilentPeers() }
            group.addTask { await self.logEvents() }
            group.addTask {
                await self.announce()
                // Graceful shutdown (or cancellation) ended the announce loop: say goodbye
                // while the sockets are still open, then end everything else.
                await self.sendToAll(.stop)
                self.stopping.withLock { $0 = true }
                await shared.close()
                await self.privateSocket.withLock { $0 }?.close()
            }
        }
        self.logger.info("discovery stopped")
    }

    // MARK: Sockets

    private func bindPrivateSocket() async throws -> DatagramSocket {
        let socket = try await DatagramSocket.bind(
            host: self.configuration.bindHost,
            port: 0,
            shared: false,
            group: self.group
        )
        self.privateSocket.withLock { $0 = socket }
        return socket
    }

    /// Receives on the private socket and binds a new one whenever NIO closes it after a
    /// send error, until shutdown.
    private func keepPrivateSocket(_ first: DatagramSocket) async {
        var socket: DatagramSocket? = first
        // Bounded by shutdown: each pass waits for the socket to close, then at least
        // 100 ms before binding again.
        while let current = socket {
            await self.receive(from: current, isShared: false)
            guard !self.stopping.withLock({ $0 }), !Task.isCancelled else { return }
            self.logger.debug("discovery socket closed; binding a new one")
            try? await Task.sleep(for: .milliseconds(100))
            socket = try? await self.bindPrivateSocket()
            if socket == nil { self.logger.warning("cannot rebind the discovery socket") }
        }
    }

    // MARK: Receiving

    private func receive(from socket: DatagramSocket, isShared: Bool) async {
        for await envelope in socket.datagrams {
            self.handle(envelope, isShared: isShared)
        }
    }

    private func handle(_ envelope: AddressedEnvelope<ByteBuffer>, isShared: Bool) {
        let announcement: Announcement
        do {
            announcement = try Announcement.parse(envelope.data, key: self.configuration.networkKey)
        } catch .badTag {
            self.statisticsBox.withLock { $0.malformed += 1 }
            self.noteRefused(envelope.remoteAddress)
            return
        } catch {
            self.statisticsBox.withLock { $0.malformed += 1 }
            self.logger.debug(
                "dropped a malformed discovery datagram",
                metadata: ["peer.address": "\(envelope.remoteAddress)", "error": "\(error)"]
            )
            return
        }
        if announcement.peerID == self.peerID {
            self.statisticsBox.withLock { $0.ownEchoes += 1 }
            return
        }
        if isShared && !self.accepts(envelope) {
            self.statisticsBox.withLock { $0.outOfScope += 1 }
            self.logger.debug(
                "ignored an announcement from outside the discovery interfaces",
                metadata: ["peer.address": "\(envelope.remoteAddress)"]
            )
            return
        }
        self.statisticsBox.withLock { $0.accepted += 1 }
        self.table.record(announcement, from: envelope.remoteAddress)
        if announcement.kind == .start {
            // A newcomer learns the swarm from these answers, well within a second.
            self.privateSocket.withLock { $0 }?.post(
                self.announcement(.alive).encoded(key: self.configuration.networkKey),
                to: envelope.remoteAddress
            )
        }
    }

    /// Logs, once per sender, a datagram refused for lacking the swarm's key.
    private func noteRefused(_ sender: SocketAddress) {
        let host = sender.ipAddress ?? "?"
        let isNew = self.refusedSenders.withLock { senders in
            guard senders.count < 256 else { return false }
            return senders.insert(host).inserted
        }
        if isNew {
            self.logger.info(
                "ignored discovery datagrams without the network key",
                metadata: ["peer.address": "\(host)"]
            )
        }
    }

    /// Whether a datagram that reached the shared port is to be heard: it comes from a
    /// network in scope, or it was sent to one of this host's own addresses by unicast
    /// (a `--peer` on the other side). A broadcast from outside the scope is ignored, so
    /// a peer limited to `lo` never answers anyone on another network.
    private func accepts(_ envelope: AddressedEnvelope<ByteBuffer>) -> Bool {
        if self.scope.withLock({ $0.contains(envelope.remoteAddress) }) { return true }
        guard let destination = envelope.metadata?.packetInfo?.destinationAddress,
            let value = NetworkScope.ipv4(destination)
        else { return false }
        return self.localAddresses.withLock { $0.contains(value) }
    }

    // MARK: Sending

    private func announcement(_ kind: Announcement.Kind) -> Announcement {
        let milliseconds = max(1, self.configuration.announceInterval.nanoseconds / 1_000_000)
        return Announcement(
            kind: kind,
            peerID: self.peerID,
            transferPort: self.transferPort,
            announceIntervalMilliseconds: UInt32(clamping: milliseconds)
        )
    }

    /// Sends `start` at once (and once more shortly after, in case the first is lost),
    /// then `alive` every interval until graceful shutdown or cancellation.
    private func announce() async {
        await self.sendToAll(.start)
        let startRepeat = min(TimeAmount.milliseconds(250), self.configuration.announceInterval)
        guard await sleepUnlessShuttingDown(.nanoseconds(startRepeat.nanoseconds)) else { return }
        await self.sendToAll(.start)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let interval = Duration.nanoseconds(self.configuration.announceInterval.nanoseconds)
            guard await sleepUnlessShuttingDown(interval) else { return }
            self.refreshScope()
            await self.sendToAll(.alive)
        }
    }

    private func refreshScope() {
        do {
            let scope = try NetworkScope.current(interfaceNames: self.configuration.interfaceNames)
            if scope.networks.isEmpty {
                self.logger.warning(
                    "no IPv4 interface to broadcast on",
                    metadata: ["discovery.interfaces": "\(self.configuration.interfaceNames)"]
                )
            }
            self.scope.withLock { $0 = scope }
        } catch {
            self.logger.warning("cannot list network interfaces", metadata: ["error": "\(error)"])
        }
        let addresses = NetworkScope.localAddresses()
        self.localAddresses.withLock { $0 = addresses }
    }

    /// Broadcasts on every network in scope, and unicasts to static peers and to known
    /// peers that the broadcasts do not reach.
    private func sendToAll(_ kind: Announcement.Kind) async {
        let bytes = self.announcement(kind).encoded(key: self.configuration.networkKey)
        let scope = self.scope.withLock { $0 }
        var targets = scope.broadcastTargets(port: self.configuration.port)
        targets += self.configuration.staticPeers
        for peer in self.table.all() where !scope.broadcastReaches(peer.discoveryAddress) {
            if !targets.contains(peer.discoveryAddress) { targets.append(peer.discoveryAddress) }
        }
        for target in targets {
            await self.send(bytes, to: target)
        }
    }

    private func send(_ bytes: ByteBuffer, to target: SocketAddress) async {
        guard let socket = self.privateSocket.withLock({ $0 }) else { return }
        do {
            try await socket.send(bytes, to: target)
        } catch {
            self.statisticsBox.withLock { $0.sendFailures += 1 }
            self.logger.debug(
                "discovery send failed",
                metadata: ["peer.address": "\(target)", "error": "\(error)"]
            )
            // A closed socket is replaced by `keepPrivateSocket`.
            if !socket.isActive { await socket.close() }
        }
    }

    // MARK: Expiry and events

    /// Drops silent peers. Checks every 50 ms, so a killed peer is gone at most that long
    /// after its third missed interval.
    private func expireSilentPeers() async {
        while await sleepUnlessShuttingDown(.milliseconds(50)) {
            self.table.expire()
        }
    }

    private func logEvents() async {
        // Iteration ends when the task is cancelled, which graceful shutdown does here.
        await cancelWhenGracefulShutdownIgnoringErrors {
            for await event in self.table.events() {
                // Observers (`p2p peers`, `p2p ls`) come and go often; only debug says so.
                switch event {
                case .joined(let peer):
                    self.logger.log(
                        level: peer.isObserver ? .debug : .info,
                        "peer joined",
                        metadata: Self.metadata(peer)
                    )
                case .left(let peer):
                    self.logger.log(level: peer.isObserver ? .debug : .info, "peer left", metadata: Self.metadata(peer))
                case .expired(let peer):
                    self.logger.log(
                        level: peer.isObserver ? .debug : .info,
                        "peer expired",
                        metadata: Self.metadata(peer)
                    )
                }
            }
        }
    }

    private static func metadata(_ peer: KnownPeer) -> Logger.Metadata {
        [
            "remote.peer.id": "\(peer.id.short)",
            "peer.address": "\(peer.transferAddressDescription)",
            "peer.observer": "\(peer.isObserver)",
        ]
    }
}
