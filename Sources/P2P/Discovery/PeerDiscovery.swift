import Foundation
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
///
/// Only datagrams from the networks in scope, loopback and the `--peer` addresses are
/// heard, so this peer never answers nor connects to a host elsewhere; answers to `start`
/// are rate-limited (`StartReplyLimiter`), and the table is bounded (`PeerRoster`). In a
/// keyed swarm each datagram is sealed with its time, a counter and the sender's own
/// address (`AnnouncementSeal`), and one that does not fit how it arrived is refused.
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
        /// Announcements from new ids refused because the table, or the sender's address's
        /// share of it, was full.
        public var tableFull = 0
        /// `stop`s refused: from another address than the peer's, or for an unknown id.
        public var stopsRefused = 0
        /// Keyed datagrams refused as replays: a counter not above the last, a timestamp
        /// outside the window, or another source than the one sealed in.
        public var replays = 0
        /// `start`s left unanswered by the rate limit.
        public var answersLimited = 0
        /// Probes (`start`s) sent to addresses other peers listed (peer exchange).
        public var exchangeProbes = 0
        /// Distinct senders (by address, up to 256) whose datagrams failed the key check:
        /// peers that use another key, or none while this one has one, or the reverse.
        public var foreignKeySenders = 0
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
    /// Broadcast addresses resting after a failed send.
    private let broadcastRest = Mutex(BroadcastRest())
    /// The IPv4 addresses of `--peer`, heard and answered wherever they are.
    private let staticPeerAddresses: Set<UInt32>
    /// The swarm's key, if any.
    private let networkKey: NetworkKey?
    /// This host's own IPv4 addresses, refreshed with the scope.
    private let localAddresses = Mutex(Set<UInt32>())
    /// How many `start`s get an answer.
    private let replyLimiter = Mutex(StartReplyLimiter())
    /// The last counter sealed into a keyed datagram; each datagram takes the next.
    private let sealCounter = Mutex<UInt64>(0)
    /// Set once `stop` is sent, so that the closing sockets are not bound again.
    private let stopping = Mutex(false)
    /// Senders already seen failing the key check, so each is logged and counted once.
    private let foreignKeySenders = Mutex(Set<String>())
    /// When the sockets last dropped a datagram unread.
    private let drops = DatagramSocket.Drops()
    /// Where the jitter of announcements and the spread of answers come from.
    private let random: Mutex<SeededRandom>
    /// Addresses other peers listed, being probed (peer exchange).
    private let exchange: Mutex<PeerExchange>
    /// Which slice of a large table announcements offer this round.
    private let exchangeTurn = Mutex(0)

    /// Creates a discovery service; nothing happens until `run()`.
    /// - Parameters:
    ///   - peerID: this peer's id.
    ///   - transferPort: the TCP port to announce; zero for an observer that serves nothing.
    ///   - configuration: ports, interval, interfaces.
    ///   - networkKey: the swarm's key: datagrams are sealed with it, and those without
    ///     its tag are dropped; `nil` for an open swarm.
    ///   - table: where found peers go.
    ///   - group: the event loops for the sockets.
    ///   - logger: where to log.
    public init(
        peerID: PeerID,
        transferPort: Int,
        configuration: DiscoveryConfiguration,
        networkKey: NetworkKey? = nil,
        table: PeerTable = PeerTable(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.peerID = peerID
        self.networkKey = networkKey
        self.transferPort = UInt16(clamping: transferPort)
        self.configuration = configuration
        self.table = table
        self.staticPeerAddresses = Set(configuration.staticPeers.compactMap(NetworkScope.ipv4))
        self.group = group
        self.random = Mutex(configuration.randomSeed.map(SeededRandom.init(seed:)) ?? .fromSystem())
        self.exchange = Mutex(PeerExchange(interval: configuration.announceInterval))
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
                group: self.group,
                drops: self.drops
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
            group.addTask { await self.receive(from: shared) }
            group.addTask { await self.keepPrivateSocket(privateSocket) }
            group.addTask { await self.expireSilentPeers() }
            group.addTask { await self.logEvents() }
            group.addTask {
                await self.announce()
                // Graceful shutdown (or cancellation) ended the announce loop: say goodbye
                // while the sockets are still open (answers still due are not sent after
                // it), then end everything else.
                self.stopping.withLock { $0 = true }
                await self.sendToAll(.stop)
                await shared.close()
                await self.privateSocket.withLock { $0 }?.close()
            }
        }
        self.logger.info("discovery stopped")
    }

    // MARK: Sockets

    /// Binds the private socket, on `port` when given (so that peers that know this one's
    /// address keep reaching it after a rebind), else on any free port.
    private func bindPrivateSocket(port: Int = 0) async throws -> DatagramSocket {
        let socket = try await DatagramSocket.bind(
            host: self.configuration.bindHost,
            port: port,
            shared: false,
            group: self.group,
            drops: self.drops
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
            await self.receive(from: current)
            guard !self.stopping.withLock({ $0 }), !Task.isCancelled else { return }
            self.logger.debug("discovery socket closed; binding a new one")
            try? await Task.sleep(for: .milliseconds(100))
            socket = try? await self.bindPrivateSocket(port: current.localPort)
            if socket == nil { socket = try? await self.bindPrivateSocket() }
            if socket == nil { self.logger.warning("cannot rebind the discovery socket") }
        }
    }

    // MARK: Receiving

    private func receive(from socket: DatagramSocket) async {
        for await envelope in socket.datagrams {
            self.handle(envelope)
        }
    }

    private func handle(_ envelope: AddressedEnvelope<ByteBuffer>) {
        let source = envelope.remoteAddress
        let announcement: Announcement
        var seal: AnnouncementSeal? = nil
        do {
            if let key = self.networkKey {
                (announcement, seal) = try Announcement.parse(envelope.data, key: key)
            } else {
                announcement = try Announcement.parse(envelope.data)
            }
        } catch {
            self.statisticsBox.withLock { $0.malformed += 1 }
            if error == .badTag || error == .sealed {
                // A swarm with another key, or one with a key while this peer has none.
                self.noteForeignKey(source)
            } else {
                self.logger.debug(
                    "dropped a malformed discovery datagram",
                    metadata: ["peer.address": "\(source)", "error": "\(error)"]
                )
            }
            return
        }
        if announcement.peerID == self.peerID {
            self.statisticsBox.withLock { $0.ownEchoes += 1 }
            return
        }
        guard self.isInScope(source) || (seal != nil && self.isUnicastToThisHost(envelope)) || self.isExchanged(source)
        else {
            self.statisticsBox.withLock { $0.outOfScope += 1 }
            self.logger.debug(
                "ignored an announcement from outside the discovery networks",
                metadata: ["peer.address": "\(source)"]
            )
            return
        }
        if let seal, let problem = seal.problem(receivedFrom: source, nowMilliseconds: Self.wallClockMilliseconds()) {
            self.statisticsBox.withLock { $0.replays += 1 }
            self.logger.debug(
                "refused a keyed discovery datagram",
                metadata: ["peer.address": "\(source)", "reason": "\(problem)"]
            )
            return
        }
        let now = NIODeadline.now()
        let outcome = self.table.admit(announcement, from: source, counter: seal?.counter, now: now)
        if case .refused(let refusal) = outcome {
            self.statisticsBox.withLock { statistics in
                switch refusal {
                case .tableFull, .addressFull: statistics.tableFull += 1
                case .stopFromElsewhere, .unknownStop: statistics.stopsRefused += 1
                case .replayed: statistics.replays += 1
                }
            }
            self.logger.debug(
                "refused a discovery announcement",
                metadata: [
                    "peer.address": "\(source)", "remote.peer.id": "\(announcement.peerID.short)",
                    "reason": "\(refusal)",
                ]
            )
            return
        }
        self.statisticsBox.withLock { $0.accepted += 1 }
        self.exchange.withLock { $0.heard(from: source) }
        if !announcement.peers.isEmpty, announcement.transferPort != 0, announcement.kind != .stop {
            self.learn(announcement.peers, from: announcement.peerID, now: now)
        }
        if announcement.kind == .start {
            // A newcomer learns the swarm from these answers, well within a second; the
            // limit keeps a flood of forged `start`s from aiming them at a bystander.
            let allowed = self.replyLimiter.withLock { $0.allow(NetworkScope.ipv4(source) ?? 0, now: now) }
            guard allowed else {
                self.statisticsBox.withLock { $0.answersLimited += 1 }
                return
            }
            // Spread over a short random delay, so that a newcomer to a large swarm is not
            // sent every answer at once (`AnnounceSchedule.answerWindow`).
            guard let socket = self.privateSocket.withLock({ $0 }) else { return }
            let knownPeers = self.table.count
            let delay = self.random.withLock { AnnounceSchedule.answerDelay(knownPeers: knownPeers, using: &$0) }
            // An answer due after this peer said `stop` is not sent: it would bring the
            // peer back into the others' tables until it expired.
            socket.post(after: delay, to: source) {
                self.stopping.withLock { $0 } ? nil : self.encoded(.alive, to: source, from: socket)
            }
        }
    }

    /// Takes the addresses a peer in the table listed, and probes the new ones at once.
    private func learn(_ addresses: [Announcement.PeerAddress], from voucher: PeerID, now: NIODeadline) {
        let scope = self.scope.withLock { $0 }
        let local = self.localAddresses.withLock { $0 }
        let probes = self.exchange.withLock {
            $0.learn(
                addresses,
                from: voucher,
                now: now,
                scope: scope,
                localAddresses: local,
                isKnown: { self.table.knows(discoveryAddress: $0) }
            )
        }
        self.probe(probes)
    }

    /// Sends a `start` to each address: one that hears this peer answers it, and joins the
    /// table by that answer like any peer.
    private func probe(_ targets: [SocketAddress]) {
        guard !targets.isEmpty, let socket = self.privateSocket.withLock({ $0 }) else { return }
        self.statisticsBox.withLock { $0.exchangeProbes += targets.count }
        for target in targets {
            socket.post(self.encoded(.start, to: target, from: socket), to: target)
        }
    }

    /// Whether a datagram from outside the networks in scope is heard because of peer
    /// exchange: it comes from an address being probed, or from a peer that answered one.
    private func isExchanged(_ source: SocketAddress) -> Bool {
        self.exchange.withLock { $0.isCandidate(source) } || self.table.knows(discoveryAddress: source)
    }

    /// Logs once, and counts, a sender whose datagrams fail the key check.
    private func noteForeignKey(_ sender: SocketAddress) {
        let host = sender.ipAddress ?? "?"
        let isNew = self.foreignKeySenders.withLock { senders in
            guard senders.count < 256, senders.insert(host).inserted else { return false }
            return true
        }
        guard isNew else { return }
        self.statisticsBox.withLock { $0.foreignKeySenders += 1 }
        self.logger.info(
            self.networkKey == nil
                ? "ignored discovery datagrams of a swarm with a network key"
                : "ignored discovery datagrams without the network key",
            metadata: ["peer.address": "\(host)"]
        )
    }

    /// Whether a datagram was sent to one of this host's own addresses, not broadcast: in a
    /// keyed swarm such a datagram from outside the scope is a member that names this
    /// peer with `--peer` (its seal binds its real address and a fresh time, so it cannot
    /// be forged or replayed from elsewhere), and it is heard, so `--peer` on one side
    /// suffices. A broadcast from outside the scope is never heard: `--interface` limits
    /// which networks discovery takes part in.
    private func isUnicastToThisHost(_ envelope: AddressedEnvelope<ByteBuffer>) -> Bool {
        guard let destination = envelope.metadata?.packetInfo?.destinationAddress,
            let value = NetworkScope.ipv4(destination)
        else { return false }
        return self.localAddresses.withLock { $0.contains(value) }
    }

    /// Whether a datagram from `source` is heard: it comes from a network in scope, from
    /// loopback, or from a `--peer` address. Anything else is ignored, so a forged
    /// announcement cannot make this peer answer or connect to a host elsewhere.
    private func isInScope(_ source: SocketAddress) -> Bool {
        Self.hears(source, scope: self.scope.withLock { $0 }, staticPeers: self.staticPeerAddresses)
    }

    /// Whether a datagram from `source` is heard, given the networks in scope and the
    /// IPv4 addresses of the `--peer`s.
    static func hears(_ source: SocketAddress, scope: NetworkScope, staticPeers: Set<UInt32>) -> Bool {
        guard let value = NetworkScope.ipv4(source) else { return false }
        if value >> 24 == 127 || staticPeers.contains(value) { return true }
        return scope.contains(source)
    }

    // MARK: Sending

    /// The announcement for `target`, offering some of `serving` (the serving peers in the
    /// table; looked up here if not given).
    private func announcement(
        _ kind: Announcement.Kind,
        to target: SocketAddress,
        serving: [KnownPeer]? = nil
    ) -> Announcement {
        let milliseconds = max(1, self.configuration.announceInterval.nanoseconds / 1_000_000)
        var peers: [Announcement.PeerAddress] = []
        if kind != .stop && self.transferPort != 0 {
            let scope = self.scope.withLock { $0 }
            let turn = self.exchangeTurn.withLock { $0 }
            peers = PeerExchange.offer(serving ?? self.table.servingPeers(), to: target, scope: scope, turn: turn)
        }
        return Announcement(
            kind: kind,
            peerID: self.peerID,
            transferPort: self.transferPort,
            announceIntervalMilliseconds: UInt32(clamping: milliseconds),
            name: self.configuration.name,
            peers: peers
        )
    }

    /// The datagram for `target`: in a keyed swarm sealed with the time, the next counter,
    /// and the address and port `socket` sends from toward `target`.
    private func encoded(
        _ kind: Announcement.Kind,
        to target: SocketAddress,
        from socket: DatagramSocket,
        serving: [KnownPeer]? = nil
    ) -> ByteBuffer {
        let announcement = self.announcement(kind, to: target, serving: serving)
        guard let key = self.networkKey else { return announcement.encoded() }
        let scope = self.scope.withLock { $0 }
        let counter = self.sealCounter.withLock { counter in
            counter += 1
            return counter
        }
        let seal = AnnouncementSeal(
            timestampMilliseconds: Self.wallClockMilliseconds(),
            counter: counter,
            sourceAddress: SourceAddress.toward(target, scope: scope, bindHost: self.configuration.bindHost) ?? 0,
            sourcePort: UInt16(clamping: socket.localPort)
        )
        return announcement.encoded(key: key, seal: seal)
    }

    /// Milliseconds since the Unix epoch: what seals carry, so that peers compare times.
    private static func wallClockMilliseconds() -> UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }

    /// Announces as `AnnounceSchedule` says (`start` at once and again while nobody is
    /// heard, then jittered `alive`s) until graceful shutdown or cancellation.
    private func announce() async {
        var schedule = AnnounceSchedule(interval: self.configuration.announceInterval)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let heardAnyone = self.table.count > 0
            let step = self.random.withLock { schedule.next(heardAnyone: heardAnyone, using: &$0) }
            if step.delay > .zero {
                guard await sleepUnlessShuttingDown(.nanoseconds(step.delay.nanoseconds)) else { return }
                self.refreshScope()
            }
            await self.sendToAll(step.kind)
            self.exchangeTurn.withLock { $0 &+= 1 }
            self.probe(self.exchange.withLock { $0.due(now: .now()) })
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

    /// Unicasts to static peers and to known peers that the broadcasts do not reach, then
    /// broadcasts on every network in scope whose broadcast address is not resting
    /// (`BroadcastRest`). Unicasts go first: a broadcast the network refuses closes the
    /// socket, and must not take them with it.
    private func sendToAll(_ kind: Announcement.Kind) async {
        let scope = self.scope.withLock { $0 }
        var unicasts = self.configuration.staticPeers
        let known = self.table.all()
        for peer in known where !scope.broadcastReaches(peer.discoveryAddress) {
            if !unicasts.contains(peer.discoveryAddress) { unicasts.append(peer.discoveryAddress) }
        }
        // Looked up once for every target's offer of exchanged peers.
        let serving = known.filter { !$0.isObserver }
        for target in unicasts {
            await self.send(kind, to: target, serving: serving)
        }
        for target in scope.broadcastTargets(port: self.configuration.port) {
            guard self.broadcastRest.withLock({ $0.allows(target, now: .now) }) else { continue }
            switch await self.send(kind, to: target, serving: serving) {
            case .some(true):
                self.broadcastRest.withLock { $0.succeeded(target) }
            case .none:
                break
            case .some(false):
                let rest = self.broadcastRest.withLock { $0.failed(target, now: .now) }
                self.logger.debug(
                    "broadcast refused; resting it",
                    metadata: ["peer.address": "\(target)", "rest": "\(rest)"]
                )
            }
        }
    }

    /// Sends one announcement.
    /// - Returns: `true` if it went out, `false` if the send failed, `nil` if there was no
    ///   open socket to send on (being replaced after an earlier failure).
    @discardableResult
    private func send(_ kind: Announcement.Kind, to target: SocketAddress, serving: [KnownPeer]) async -> Bool? {
        guard let socket = self.privateSocket.withLock({ $0 }), socket.isActive else { return nil }
        do {
            try await socket.send(self.encoded(kind, to: target, from: socket, serving: serving), to: target)
            return true
        } catch ChannelError.ioOnClosedChannel {
            return nil
        } catch {
            self.statisticsBox.withLock { $0.sendFailures += 1 }
            self.logger.debug(
                "discovery send failed",
                metadata: ["peer.address": "\(target)", "error": "\(error)"]
            )
            // A closed socket is replaced by `keepPrivateSocket`.
            if !socket.isActive { await socket.close() }
            return false
        }
    }

    // MARK: Expiry and events

    /// Drops silent peers. Checks every 50 ms, so a killed peer is gone at most that long
    /// after its third missed interval; but not while this peer itself dropped datagrams
    /// unread within that peer's lifetime (a flood), when its silence may be this peer's
    /// deafness.
    private func expireSilentPeers() async {
        while await sleepUnlessShuttingDown(.milliseconds(50)) {
            self.table.expire(missedSince: self.drops.lastDrop)
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
