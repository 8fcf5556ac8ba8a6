import DequeModule
import NIOCore
import P2P

/// A crowd of one seeder and N downloaders in virtual time, with modelled links: each
/// downloader runs the real download machines (`DownloadState` with its `ChunkScheduler`,
/// a `RequestPipeline` per connection), relays through the real `RelayRouting` over the
/// real `RelayOverlay`, and the seeder hands out work through the real `WorkHandout`. The
/// drivers here do what `Downloader`'s workers and `SwarmResponder` do around the same
/// values, with messages on simulated links instead of frames on sockets.
final class Swarm {
    /// What crosses a link. Requests go from a downloader to the peer it connected to;
    /// answers, relayed pieces and notices come back on the same connection.
    enum Message {
        case relayRequest
        case inventoryRequest
        case chunkRequest(Int)
        case workRequest(held: ChunkBitmap?, pieceLength: Int)
        case inventory(ChunkBitmap)
        case chunkData(Int, length: Int)
        case assignedPiece(chunk: Int, offset: Int, length: Int)
        case noWork
        case lacks(Int)
        case relayedPiece(chunk: Int, offset: Int, length: Int, subscriber: UInt64)
        case unrelayed(ChunkBitmap)

        /// Bytes on the link: a frame header, the file id and what follows.
        func size(chunkCount: Int) -> Int {
            let header = 12 + 32 + 8
            switch self {
            case .relayRequest, .inventoryRequest, .chunkRequest, .noWork, .lacks: return header
            case .workRequest(let held, _): return header + (held == nil ? 0 : (chunkCount + 7) / 8)
            case .inventory, .unrelayed: return header + (chunkCount + 7) / 8
            case .chunkData(_, let length), .assignedPiece(_, _, let length), .relayedPiece(_, _, let length, _):
                return header + length
            }
        }
    }

    enum Event {
        case start(Int)
        case connected(from: Int, to: Int)
        case unitSent(Int)
        case arrived(Message, from: Int, to: Int)
        case tick(Int)
        case leave(Int)
        case verifiedWhole(Int)
    }

    /// One downloader's connection to a peer, as its worker keeps it. A class, so that the
    /// pipeline is changed where it is kept, not copied out and back on every request.
    final class Link {
        var pipeline: RequestPipeline
        var lastRefresh = -Double.infinity
        var sentHeld = false
        var connected = false

        init(pipeline: RequestPipeline) {
            self.pipeline = pipeline
        }
    }

    final class Host {
        let index: Int
        let id: PeerID
        var uplink: Uplink<Message>
        var downlinkFreeAt = 0.0
        var left = false
        var rank = -1
        // Downloader.
        var state: DownloadState? = nil
        var routing: RelayRouting
        var links: [Int: Link] = [:]
        var subscriberOfHost: [Int: UInt64] = [:]
        var hostOfSubscriber: [UInt64: Int] = [:]
        /// Bytes of the chunk being handed out in pieces (one at a time per connection).
        var assignedBytes: [Int: Int] = [:]
        /// Bytes of chunks arriving relayed, per relayer.
        var relayedBytes: [Int: [Int: Int]] = [:]
        var waitingForBacklog = false
        var startedAt: Double? = nil
        var completedAt: Double? = nil
        var verifiedAt: Double? = nil
        var duplicateBytes: Int64 = 0
        var duplicatesByArrival: [ChunkArrival: Int] = [:]
        var arrivals: [ChunkArrival: Int] = [:]
        var relayDrops = 0
        var bytesReceived: Int64 = 0
        // Seeder.
        var handout: WorkHandout? = nil
        var handed: [Int: ChunkBitmap] = [:]

        init(index: Int, id: PeerID, uplink: Uplink<Message>, relayQueue: Int) {
            self.index = index
            self.id = id
            self.uplink = uplink
            self.routing = RelayRouting(maximumQueuedBytes: relayQueue)
        }
    }

    let scenario: Scenario
    let manifest: Manifest
    let overlay: RelayOverlay
    private(set) var hosts: [Host] = []
    private var hostAtRank: [Int] = []
    private let membership: RelayMembership
    private var indexOfID: [PeerID: Int] = [:]
    /// Downloaders that have neither verified their copy nor left.
    private var remaining: Int
    private var events = EventQueue<Event>()
    private var now = 0.0
    private let epoch = ContinuousClock.now
    private var random: SeededRandom
    private(set) var processedEvents: UInt64 = 0
    /// The cores every host shares, if the scenario has them.
    private var cpu: CPUPool?

    static let seeder = 0

    init(_ scenario: Scenario) throws {
        self.scenario = scenario
        var random = SeededRandom(seed: scenario.seed)
        let chunkSize = ChunkSizing.chunkSize(forFileSize: UInt64(scenario.fileSize))
        let chunkCount = ChunkSizing.chunkCount(fileSize: UInt64(scenario.fileSize), chunkSize: chunkSize)
        self.manifest = try Manifest(
            name: FileName("simulated.bin"),
            size: UInt64(scenario.fileSize),
            chunkSize: chunkSize,
            chunkHashes: [UInt8](repeating: 0, count: chunkCount * 32)
        )
        let partners = scenario.maximumPartners > 0 ? scenario.maximumPartners : scenario.downloaders
        self.overlay = RelayOverlay(count: scenario.downloaders, maximumPartners: partners)
        let relayQueue = scenario.relayQueueBytes
        for index in 0...scenario.downloaders {
            let rate = (index == Self.seeder ? scenario.seederUplink : scenario.uplinkBitsPerSecond)
            let uplink = Uplink<Message>(
                bytesPerSecond: rate / 8 * scenario.wireEfficiency,
                unit: scenario.unitBytes
            )
            let id = PeerID(high: random.next(), low: random.next())
            self.hosts.append(Host(index: index, id: id, uplink: uplink, relayQueue: relayQueue))
        }
        // Every downloader ranks the others the same way (by id, as the real ones would
        // from the peer table); ranks place them in the overlay.
        let hosts = self.hosts
        let ranked = (1..<hosts.count).sorted { hosts[$0].id < hosts[$1].id }
        for (rank, index) in ranked.enumerated() { hosts[index].rank = rank }
        self.hostAtRank = ranked
        // The engine's view of the crowd, derived as a downloader derives it from the peer
        // table: every peer heard, minus the one that holds the whole file.
        self.membership = RelayMembership(
            me: hosts[ranked[0]].id,
            downloaders: ranked.map { hosts[$0].id },
            maximumPartners: scenario.maximumPartners
        )
        precondition(
            self.membership.overlay == self.overlay
                && self.membership.members == ranked.map { hosts[$0].id },
            "the engine's membership and the simulator's overlay differ"
        )
        self.remaining = scenario.downloaders
        self.random = random
        for host in hosts { self.indexOfID[host.id] = host.index }
        self.cpu = scenario.sharedCores > 0 ? CPUPool(cores: scenario.sharedCores) : nil
        self.hosts[Self.seeder].handout = WorkHandout(
            roundIdleTimeout: .nanoseconds(Int64(scenario.roundIdleSeconds * 1e9))
        )
    }

    private var chunkSize: Int { self.manifest.chunkSize }
    private var chunkCount: Int { self.manifest.chunkCount }
    private var instant: ContinuousClock.Instant { self.epoch + .nanoseconds(Int64(self.now * 1e9)) }
    private var deadline: NIODeadline { .uptimeNanoseconds(UInt64(self.now * 1e9) + 1_000_000_000) }

    // MARK: Running

    /// Runs until every downloader that stays has the file, or the time limit.
    /// - Parameter progress: called every million events with the virtual time, the
    ///   downloaders done and the events so far.
    func run(progress: ((_ seconds: Double, _ done: Int, _ events: UInt64) -> Void)? = nil) {
        for index in 1..<self.hosts.count {
            let delay = Double.random(in: 0...max(0, self.scenario.joinSpreadSeconds), using: &self.random)
            self.events.schedule(.start(index), at: delay)
        }
        if self.scenario.leavers > 0 {
            let leaving = (1..<self.hosts.count).shuffled(using: &self.random).prefix(self.scenario.leavers)
            for index in leaving { self.events.schedule(.leave(index), at: self.scenario.leaveAtSeconds) }
        }
        while let (time, event) = self.events.next() {
            guard time <= self.scenario.timeLimitSeconds else { break }
            self.now = time
            self.processedEvents += 1
            if let progress, self.processedEvents % 1_000_000 == 0 {
                progress(time, self.scenario.downloaders - self.remaining, self.processedEvents)
            }
            self.handle(event)
            if self.isDone { break }
        }
    }

    private var isDone: Bool { self.remaining == 0 }

    private func handle(_ event: Event) {
        switch event {
        case .start(let index):
            self.start(index)
        case .connected(let from, let to):
            self.connected(from: from, to: to)
        case .unitSent(let index):
            self.unitSent(index)
        case .arrived(let message, let from, let to):
            self.arrived(message, from: from, to: to)
        case .tick(let index):
            let host = self.hosts[index]
            guard !host.left else { return }
            self.pumpAll(host)
            if host.state?.isFinished == false {
                self.events.schedule(.tick(index), at: self.now + 0.25)
            }
        case .leave(let index):
            self.leave(index)
        case .verifiedWhole(let index):
            let host = self.hosts[index]
            guard !host.left, host.verifiedAt == nil else { return }
            host.verifiedAt = self.now
            self.remaining -= 1
        }
    }

    // MARK: Links

    private func send(_ message: Message, from: Int, to: Int) {
        let host = self.hosts[from]
        guard !host.left, !self.hosts[to].left else { return }
        host.uplink.enqueue(message, size: message.size(chunkCount: self.chunkCount), to: to)
        self.startUplink(host)
    }

    private func startUplink(_ host: Host) {
        guard let (seconds, unitBytes, starting) = host.uplink.startNext() else { return }
        // A relayed piece leaves the relay queue once it goes to the socket.
        if case .relayedPiece(_, _, let length, let subscriber) = starting {
            _ = host.routing.written(length, by: subscriber)
            if host.waitingForBacklog {
                host.waitingForBacklog = false
                self.pumpAll(host)
            }
        }
        // With shared cores the unit also needs its CPU (both ends and the kernel's path
        // between them), and leaves at the later of its link time and its CPU time.
        var sent = self.now + seconds
        if self.cpu != nil {
            sent = max(sent, self.cpu!.run(Double(unitBytes) * self.scenario.cpuSecondsPerByte, at: self.now))
        }
        self.events.schedule(.unitSent(host.index), at: sent)
    }

    private func unitSent(_ index: Int) {
        let host = self.hosts[index]
        if let (message, size, destination) = host.uplink.finishUnit(), !host.left {
            let receiver = self.hosts[destination]
            let arrival = self.now + self.scenario.latency
            let delivered =
                max(arrival, receiver.downlinkFreeAt) + Double(size) * 8 / self.scenario.downlinkBitsPerSecond
            receiver.downlinkFreeAt = delivered
            self.events.schedule(.arrived(message, from: index, to: destination), at: delivered)
        }
        self.startUplink(host)
    }

    private func arrived(_ message: Message, from: Int, to: Int) {
        guard !self.hosts[to].left, !self.hosts[from].left else { return }
        self.deliver(message, from: from, to: to)
    }

    // MARK: Downloaders

    private func start(_ index: Int) {
        let host = self.hosts[index]
        host.startedAt = self.now
        var state = DownloadState(
            manifest: self.manifest,
            have: ChunkBitmap(count: self.chunkCount),
            relayGrace: self.scenario.configuration.relayGrace
        )
        let partners = self.overlay.partners(of: host.rank).map { self.hostAtRank[$0] }
        // The lookup's inventories: the seeder holds the whole file, and the partners that
        // started before this one list their partial copies. (The engine's lookup hears
        // every peer; an empty copy at a peer that is not a partner changes none of its
        // decisions, and a crowd of thousands would hold millions of them.)
        _ = state.update(
            self.hosts[Self.seeder].id,
            holding: .full(count: self.chunkCount),
            now: 0
        )
        for other in partners where self.hosts[other].startedAt != nil {
            _ = state.update(self.hosts[other].id, holding: ChunkBitmap(count: self.chunkCount), now: 0)
        }
        // Every downloader is in the view from the start, as on one broadcast domain whose
        // peers all announced before the crowd was released: the engine's membership of
        // them all (checked against `overlay` at the start), each downloader in its place.
        // The state takes its grace per hop and whether it has partners from it.
        _ = state.adopt(self.membership.seen(by: host.id))
        host.state = state
        host.routing.beginDownload(of: self.manifest.id, chunkCount: self.chunkCount)
        let connectAt = self.now + self.scenario.startupSeconds
        for peer in [Self.seeder] + partners {
            host.links[peer] = Link(pipeline: RequestPipeline(now: self.instant))
            // The TCP handshake: one round trip.
            self.events.schedule(.connected(from: index, to: peer), at: connectAt + 2 * self.scenario.latency)
        }
        self.events.schedule(.tick(index), at: connectAt + 0.25)
    }

    private func connected(from: Int, to: Int) {
        let host = self.hosts[from]
        guard !host.left, !self.hosts[to].left, let link = host.links[to] else { return }
        link.connected = true
        link.pipeline.expect(.inventory, now: self.instant)
        link.lastRefresh = self.now
        self.send(.relayRequest, from: from, to: to)
        self.send(.inventoryRequest, from: from, to: to)
        self.pump(host, to)
    }

    /// What a worker's sending half does: requests as the window, the forwarding backlog
    /// and the scheduler allow (`Downloader.sendRequests`).
    private func pump(_ host: Host, _ peer: Int) {
        guard let link = host.links[peer], link.connected, host.state != nil else { return }
        // The state is changed where it is kept: a copy would copy the scheduler's tables.
        let requests = self.requests(host, to: peer, on: link, state: &host.state!)
        for request in requests { self.send(request, from: host.index, to: peer) }
    }

    private func requests(_ host: Host, to peer: Int, on link: Link, state: inout DownloadState) -> [Message] {
        guard !state.isFinished else { return [] }
        let configuration = self.scenario.configuration
        let peerID = self.hosts[peer].id
        let file = self.manifest.id
        let pacing = WorkerPacing(configuration: configuration, chunkSize: self.chunkSize)
        var requests: [Message] = []
        if pacing.isRefreshDue(
            peerHoldsAll: state.scheduler.holdsAll(peerID),
            sinceLastRefresh: .nanoseconds(Int64((self.now - link.lastRefresh) * 1e9)),
            expectingInventory: link.pipeline.isExpecting(.inventory)
        ) {
            link.pipeline.expect(.inventory, now: self.instant)
            requests.append(.inventoryRequest)
            link.lastRefresh = self.now
        }
        let window = link.pipeline.window(
            chunkSize: self.chunkSize,
            initial: configuration.initialWindow,
            configuration: configuration
        )
        if state.scheduler.workSource == peerID {
            // Partners that have not subscribed yet soon will: what is handed out before
            // they do is forwarded to nobody, and each of them fetches it on its own.
            let relaying = host.routing.subscriberCount(of: file) > 0 || state.hasRelayPartners
            while link.pipeline.requestsInFlight < pacing.workRequestLimit(relaying: relaying, window: window) {
                // Past one hop, partners forward others' chunks too: a downloader takes
                // more work only while its whole relay queue is short as well.
                let totalLimit = self.overlay.dimensions > 1 ? self.scenario.totalBacklogLimit : 0
                if relaying
                    && (host.routing.backlog(of: file) >= pacing.backlogBound(inFlight: link.pipeline.requestsInFlight)
                        || (totalLimit > 0 && host.routing.totalBacklog(of: file) >= totalLimit))
                {
                    host.waitingForBacklog = true
                    break
                }
                link.pipeline.expect(.work, now: self.instant)
                requests.append(
                    .workRequest(
                        held: link.sentHeld ? nil : state.scheduler.have,
                        pieceLength: pacing.pieceLength(relaying: relaying)
                    )
                )
                link.sentHeld = true
            }
        } else {
            while link.pipeline.requestsInFlight < window,
                let chunk = state.next(for: peerID, now: self.now)
            {
                link.pipeline.expect(.chunk(chunk), now: self.instant)
                requests.append(.chunkRequest(chunk))
            }
        }
        return requests
    }

    private func pumpAll(_ host: Host) {
        for peer in host.links.keys.sorted() { self.pump(host, peer) }
    }

    private func wake(_ host: Host, _ wake: DownloadState.Wake) {
        if wake == .everyone { self.pumpAll(host) }
    }

    // MARK: Messages

    private func deliver(_ message: Message, from: Int, to: Int) {
        let receiver = self.hosts[to]
        switch message {
        case .relayRequest, .inventoryRequest, .chunkRequest, .workRequest:
            self.serve(message, from: from, at: receiver)
        default:
            self.receive(message, from: from, at: receiver)
            self.pump(receiver, from)
        }
    }

    /// What `SwarmResponder` does with a request.
    private func serve(_ message: Message, from client: Int, at server: Host) {
        let held = server.index == Self.seeder ? ChunkBitmap.full(count: self.chunkCount) : server.state?.scheduler.have
        switch message {
        case .relayRequest:
            guard server.subscriberOfHost[client] == nil else { return }
            let (subscriber, missed) = server.routing.subscribe(to: self.manifest.id, from: self.hosts[client].id)
            server.subscriberOfHost[client] = subscriber
            server.hostOfSubscriber[subscriber] = client
            if let missed, missed.setCount > 0 { self.send(.unrelayed(missed), from: server.index, to: client) }
        case .inventoryRequest:
            self.send(.inventory(held ?? ChunkBitmap(count: self.chunkCount)), from: server.index, to: client)
        case .chunkRequest(let chunk):
            let answer: Message =
                held?.contains(chunk) == true
                ? .chunkData(chunk, length: self.manifest.length(ofChunk: chunk)) : .lacks(chunk)
            self.send(answer, from: server.index, to: client)
        case .workRequest(let reported, let pieceLength):
            guard server.index == Self.seeder, var handout = server.handout else {
                self.send(.noWork, from: server.index, to: client)
                return
            }
            var holds = server.handed[client] ?? ChunkBitmap(count: self.chunkCount)
            if let reported { for index in reported.indices { holds.insert(index) } }
            let chunk = handout.next(
                of: self.manifest.id,
                chunkCount: self.chunkCount,
                requesterHolds: holds,
                now: self.deadline
            )
            server.handout = handout
            guard let chunk else {
                server.handed[client] = holds
                self.send(.noWork, from: server.index, to: client)
                return
            }
            holds.insert(chunk)
            server.handed[client] = holds
            let length = self.manifest.length(ofChunk: chunk)
            let piece = pieceLength > 0 ? max(pieceLength, 16 << 10) : length
            for offset in stride(from: 0, to: max(length, 1), by: piece) {
                self.send(
                    .assignedPiece(chunk: chunk, offset: offset, length: min(piece, length - offset)),
                    from: server.index,
                    to: client
                )
            }
        default:
            break
        }
    }

    /// What a worker's receiving half does with an answer, a relayed piece or a notice
    /// (`Downloader.receive`).
    private func receive(_ message: Message, from peer: Int, at host: Host) {
        guard host.state != nil, host.links[peer] != nil else { return }
        let peerID = self.hosts[peer].id
        let instant = self.instant
        let now = self.now
        var wakeEveryone = false
        func note(_ wake: DownloadState.Wake) {
            if wake == .everyone { wakeEveryone = true }
        }
        switch message {
        case .inventory(let holding):
            try? host.links[peer]!.pipeline.answered(.inventory, bytes: 0, now: instant)
            note(host.state!.update(peerID, holding: holding, now: now))
        case .unrelayed(let chunks):
            note(host.state!.unrelayed(chunks, by: peerID, now: now))
        case .chunkData(let chunk, let length):
            try? host.links[peer]!.pipeline.answered(.chunk(chunk), bytes: length, now: instant)
            host.bytesReceived += Int64(length)
            note(self.complete(chunk, from: peerID, as: .pulled, host: host))
        case .lacks(let chunk):
            if case .chunk = (try? host.links[peer]!.pipeline.answeredWithFailure(chunk: chunk)) {
                note(host.state!.lacks(chunk, peer: peerID))
            }
        case .noWork:
            if case .work = (try? host.links[peer]!.pipeline.answeredWithFailure(chunk: 0)) {
                note(host.state!.workExhausted(now: now).wake)
            }
        case .assignedPiece(let chunk, let offset, let length):
            host.bytesReceived += Int64(length)
            let chunkLength = self.manifest.length(ofChunk: chunk)
            let total = host.assignedBytes[chunk, default: 0] + length
            let onward = self.onward(host, receivedFrom: nil)
            self.forward(chunk, offset: offset, length: length, chunkLength: chunkLength, from: host, to: onward)
            if total >= chunkLength {
                host.assignedBytes[chunk] = nil
                try? host.links[peer]!.pipeline.answered(.work, bytes: chunkLength, now: instant)
                note(self.complete(chunk, from: peerID, as: .assigned, host: host))
            } else {
                host.assignedBytes[chunk] = total
            }
        case .relayedPiece(let chunk, let offset, let length, _):
            host.bytesReceived += Int64(length)
            let chunkLength = self.manifest.length(ofChunk: chunk)
            let onward = self.onward(host, receivedFrom: peer)
            if !onward.isEmpty {
                self.forward(chunk, offset: offset, length: length, chunkLength: chunkLength, from: host, to: onward)
            }
            let total = host.relayedBytes[peer, default: [:]][chunk, default: 0] + length
            if total >= chunkLength {
                host.relayedBytes[peer]?[chunk] = nil
                note(self.complete(chunk, from: peerID, as: .relayed, host: host))
            } else {
                host.relayedBytes[peer, default: [:]][chunk] = total
            }
        default:
            break
        }
        if wakeEveryone { self.pumpAll(host) }
    }

    /// The subscribers of `host` that the overlay says get a chunk it got from `source`
    /// (`nil`: from the seeder).
    private func onward(_ host: Host, receivedFrom source: Int?) -> Set<UInt64> {
        let sourceRank = source.map { self.hosts[$0].rank }
        let targets = self.overlay.onward(from: host.rank, receivedFrom: sourceRank)
        return Set(targets.compactMap { host.subscriberOfHost[self.hostAtRank[$0]] })
    }

    private func forward(
        _ chunk: Int,
        offset: Int,
        length: Int,
        chunkLength: Int,
        from host: Host,
        to eligible: Set<UInt64>
    ) {
        let (takers, dropped) = host.routing.route(
            chunk: chunk,
            of: self.manifest.id,
            offset: offset,
            length: length,
            chunkLength: chunkLength,
            eligible: { eligible.contains($0) }
        )
        if offset == 0 { host.relayDrops += eligible.count - takers.count }
        if self.scenario.dropNotices && !dropped.isEmpty {
            var notice = ChunkBitmap(count: self.chunkCount)
            notice.insert(chunk)
            for subscriber in dropped.sorted() {
                guard let target = host.hostOfSubscriber[subscriber] else { continue }
                self.send(.unrelayed(notice), from: host.index, to: target)
            }
        }
        for subscriber in takers.sorted() {
            guard let target = host.hostOfSubscriber[subscriber] else { continue }
            self.send(
                .relayedPiece(chunk: chunk, offset: offset, length: length, subscriber: subscriber),
                from: host.index,
                to: target
            )
        }
    }

    /// A chunk arrived whole (and verified): claimed and written, unless it is a duplicate.
    private func complete(_ chunk: Int, from peer: PeerID, as arrival: ChunkArrival, host: Host) -> DownloadState.Wake {
        let length = self.manifest.length(ofChunk: chunk)
        guard host.state!.claimChunk(chunk, from: peer) else {
            host.duplicateBytes += Int64(length)
            host.duplicatesByArrival[arrival, default: 0] += 1
            return .nobody
        }
        host.arrivals[arrival, default: 0] += 1
        if arrival == .pulled, let relayer = host.state!.relayOwed(chunk), let source = self.indexOfID[relayer] {
            // Fetched in place of a relayer's forward: it goes on as that forward would have.
            let onward = self.onward(host, receivedFrom: source)
            if !onward.isEmpty {
                self.forward(chunk, offset: 0, length: length, chunkLength: length, from: host, to: onward)
            }
        }
        let wake = host.state!.completed(chunk, bytes: length, from: peer, as: arrival)
        if host.state!.isComplete && host.completedAt == nil {
            host.completedAt = self.now
            // The read-back waits on the disk, and with shared cores on its CPU too.
            var verified = self.now + self.scenario.readBackSeconds
            if self.cpu != nil, self.scenario.readBackCPUSeconds > 0 {
                verified = max(verified, self.cpu!.run(self.scenario.readBackCPUSeconds, at: self.now))
            }
            self.events.schedule(.verifiedWhole(host.index), at: verified)
        }
        return wake
    }

    // MARK: Leaving

    private func leave(_ index: Int) {
        let host = self.hosts[index]
        guard !host.left, host.completedAt == nil else { return }
        host.left = true
        self.remaining -= 1
        for other in self.hosts where other.index != index && !other.left {
            other.uplink.drop(to: index)
            if let subscriber = other.subscriberOfHost.removeValue(forKey: index) {
                other.hostOfSubscriber[subscriber] = nil
                _ = other.routing.unsubscribe(subscriber)
            }
            other.relayedBytes[index] = nil
            if let link = other.links.removeValue(forKey: index), other.state != nil {
                for chunk in link.pipeline.chunksInFlight { _ = other.state!.cancel(chunk, from: host.id) }
                let wake = other.state!.remove(host.id, dropped: false)
                self.wake(other, wake)
            }
        }
    }

    // MARK: Results

    /// The run's figures.
    func report() -> Report {
        let downloaders = self.hosts.dropFirst()
        let stayed = downloaders.filter { !$0.left }
        let times = stayed.compactMap(\.verifiedAt).sorted()
        var connections = [Int](repeating: 0, count: self.hosts.count)
        for host in self.hosts where !host.left {
            for peer in host.links.keys where !self.hosts[peer].left {
                connections[host.index] += 1
                connections[peer] += 1
            }
        }
        let downloaderConnections = connections.dropFirst()
        return Report(
            scenario: self.scenario,
            overlay: self.overlay,
            chunkSize: self.chunkSize,
            completed: times.count,
            expected: stayed.count,
            completionTimes: times,
            seederUploadCopies: Double(self.hosts[Self.seeder].uplink.bytesSent) / Double(self.scenario.fileSize),
            duplicateShare: Double(downloaders.reduce(0) { $0 + $1.duplicateBytes })
                / Double(max(1, downloaders.reduce(0) { $0 + $1.bytesReceived })),
            connectionsPerDownloader: (
                downloaderConnections.min() ?? 0,
                Double(downloaderConnections.reduce(0, +)) / Double(max(1, downloaderConnections.count)),
                downloaderConnections.max() ?? 0
            ),
            seederConnections: connections[Self.seeder],
            totalConnections: connections.reduce(0, +) / 2,
            events: self.processedEvents,
            arrivals: downloaders.reduce(into: [:]) { $0.merge($1.arrivals, uniquingKeysWith: +) },
            duplicates: downloaders.reduce(into: [:]) { $0.merge($1.duplicatesByArrival, uniquingKeysWith: +) },
            relayDrops: downloaders.reduce(0) { $0 + $1.relayDrops },
            cpu: self.cpu.map { cpu in
                // The run ends at the last copy, or where the time limit stopped it.
                let busy = cpu.busySeconds(until: self.now)
                return Report.CPU(cores: cpu.cores, seconds: busy, busyCores: self.now > 0 ? busy / self.now : 0)
            }
        )
    }
}
