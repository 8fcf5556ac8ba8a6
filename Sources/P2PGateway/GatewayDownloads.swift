import Logging
import P2P
import ServiceLifecycle
import Synchronization

/// The downloads the gateway runs: those asked for through the API, and those of files
/// that HTTP clients fetch from this peer without it holding them. Each runs the peer's
/// own `Downloader`, so every chunk is verified before it is written, and from there before
/// the gateway sends a byte of it.
///
/// A `DownloadBoard` value decides; this owner holds it in a `Mutex`, runs the downloads
/// as child tasks of `run()`, wakes the responses waiting for a download's chunks, and
/// feeds the event stream.
public final class GatewayDownloads: Service, Sendable {
    private struct Request: Sendable {
        var id: FileID
        var name: String
        var cancel: AsyncStream<Void>
    }

    private struct State {
        var board = DownloadBoard()
        /// How to cancel each download under way.
        var cancels: [FileID: AsyncStream<Void>.Continuation] = [:]
        /// Tasks waiting for a download to change.
        var waiters: [FileID: [CheckedContinuation<Void, Never>]] = [:]
        var subscribers: [UInt64: AsyncStream<GatewayEvent>.Continuation] = [:]
        var nextSubscriber: UInt64 = 0
        var stopped = false
    }

    private let peer: Peer
    private let metrics: GatewayMetrics?
    private let logger: Logger
    private let state = Mutex(State())
    private let requests: AsyncStream<Request>
    private let requestSink: AsyncStream<Request>.Continuation
    private let started = ContinuousClock.now

    /// - Parameters:
    ///   - peer: the peer whose downloader, store and table are used.
    ///   - metrics: where finished downloads are counted, if anywhere.
    ///   - logger: where to log.
    public init(peer: Peer, metrics: GatewayMetrics? = nil, logger: Logger) {
        self.peer = peer
        self.metrics = metrics
        self.logger = logger
        (self.requests, self.requestSink) = AsyncStream.makeStream(of: Request.self)
    }

    private var now: Double { (ContinuousClock.now - self.started).seconds }

    // MARK: Asking

    /// Starts downloading a file unless a download of it is under way.
    /// - Parameters:
    ///   - id: the file.
    ///   - name: its name.
    ///   - size: its size, if known.
    /// - Returns: the download as it stands.
    @discardableResult
    public func fetch(_ id: FileID, name: String, size: UInt64? = nil) -> TransferInfo? {
        let (cancel, cancelSink) = AsyncStream.makeStream(of: Void.self)
        let (event, stopped) = self.state.withLock { state -> (TransferInfo?, Bool) in
            guard !state.stopped else { return (nil, true) }
            let (start, event) = state.board.request(id, name: name, size: size, now: self.now)
            if start == .begin { state.cancels[id] = cancelSink }
            return (event, false)
        }
        if stopped { return nil }
        if let event {
            self.requestSink.yield(Request(id: id, name: name, cancel: cancel))
            self.publish(.transfer(event), about: id)
        }
        return self.info(id)
    }

    /// Cancels a download under way; its partial file is kept.
    /// - Returns: whether one was under way.
    public func cancel(_ id: FileID) -> Bool {
        let sink = self.state.withLock { $0.cancels.removeValue(forKey: id) }
        sink?.finish()
        return sink != nil
    }

    /// One download as it stands.
    public func info(_ id: FileID) -> TransferInfo? {
        let now = self.now
        return self.state.withLock { $0.board.info(id, now: now) }
    }

    /// Every download shown.
    public func all() -> [TransferInfo] {
        let now = self.now
        return self.state.withLock { $0.board.all(now: now) }
    }

    /// The events from now on; the stream ends when the gateway stops.
    public func events() -> AsyncStream<GatewayEvent> {
        let (stream, sink) = AsyncStream.makeStream(of: GatewayEvent.self, bufferingPolicy: .bufferingNewest(256))
        let key = self.state.withLock { state -> UInt64? in
            guard !state.stopped else { return nil }
            defer { state.nextSubscriber += 1 }
            state.subscribers[state.nextSubscriber] = sink
            return state.nextSubscriber
        }
        guard let key else {
            sink.finish()
            return stream
        }
        sink.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.subscribers.removeValue(forKey: key) }
        }
        return stream
    }

    // MARK: Waiting

    /// Returns once the download of `id` has left `starting` (its manifest is then in the
    /// store), or has ended.
    /// - Returns: the download then, or `nil` if there is none.
    public func waitUntilFetching(_ id: FileID) async -> TransferInfo? {
        // Each turn waits for the download to change; once the gateway stops, every
        // download has ended.
        while let info = self.info(id) {
            guard info.state == .starting else { return info }
            await self.waitForChange(of: id, unless: { $0?.state != .starting })
        }
        return nil
    }

    /// Returns once chunk `index` of `id` may be read: it has been written, the download
    /// finished, or it moved on without the chunk arriving (the caller reads and asks
    /// again).
    /// - Throws: `P2PError` when the download ended without the file, or `CancellationError`.
    public func waitForChunk(_ id: FileID, index: Int) async throws {
        guard let info = await self.waitUntilFetching(id) else {
            throw P2PError(code: .notFound, "no download of \(id.short) is under way")
        }
        switch info.state {
        case .starting, .finished:
            return
        case .failed, .cancelled:
            throw P2PError(code: .notFound, "the download of \(info.name) ended: \(info.error ?? info.state.rawValue)")
        case .fetching:
            guard let store = self.peer.store else { return }
            let before = info
            await store.waitForWrite(id, index: index)
            // The write wait returns at once while the download is between passes or ending:
            // then wait for the download itself to move before the caller reads again.
            if (try? await store.readChunk(id, index: index)) == nil {
                await self.waitForChange(of: id, unless: { $0 != before })
            }
            try Task.checkCancellation()
        }
    }

    /// Waits until the download of `id` changes, unless `done` holds for it already.
    private func waitForChange(of id: FileID, unless done: @escaping @Sendable (TransferInfo?) -> Bool) async {
        let now = self.now
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.stopped || Task.isCancelled || done(state.board.info(id, now: now)) { return true }
                    state.waiters[id, default: []].append(waiter)
                    return false
                }
                if resumeNow { waiter.resume() }
            }
        } onCancel: {
            self.wakeWaiters(of: id)
        }
    }

    private func wakeWaiters(of id: FileID) {
        let waiters = self.state.withLock { $0.waiters.removeValue(forKey: id) } ?? []
        for waiter in waiters { waiter.resume() }
    }

    private func publish(_ event: GatewayEvent, about id: FileID? = nil) {
        let subscribers = self.state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers { subscriber.yield(event) }
        if let id { self.wakeWaiters(of: id) }
    }

    // MARK: Running

    /// Runs the downloads asked for, and forwards the peer table's changes as events,
    /// until graceful shutdown; downloads under way are then cancelled (their partial
    /// files kept).
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            let peerEvents = self.peer.table.events()
            group.addTask {
                for await event in peerEvents.cancelOnGracefulShutdown() {
                    self.publish(.peer(Self.change(event)))
                }
            }
            for await request in self.requests.cancelOnGracefulShutdown() {
                group.addTask { await self.execute(request) }
            }
            group.cancelAll()
        }
        // Downloads asked for as the gateway stopped never ran: they end here, so that no
        // response waits for them.
        let now = self.now
        let (subscribers, waiters) = self.state.withLock { state in
            state.stopped = true
            for info in state.board.all(now: now) where !info.hasEnded {
                if let id = FileID(hex: info.id) {
                    _ = state.board.end(id, as: .cancelled, error: "the gateway stopped", now: now)
                }
            }
            state.cancels.removeAll()
            defer {
                state.subscribers.removeAll()
                state.waiters.removeAll()
            }
            return (Array(state.subscribers.values), state.waiters.values.flatMap { $0 })
        }
        for subscriber in subscribers { subscriber.finish() }
        for waiter in waiters { waiter.resume() }
    }

    private static func change(_ event: PeerEvent) -> GatewayEvent.PeerChange {
        switch event {
        case .joined(let peer):
            .init(change: "joined", id: peer.id.description, address: peer.transferAddressDescription)
        case .left(let peer):
            .init(change: "left", id: peer.id.description, address: peer.transferAddressDescription)
        case .expired(let peer):
            .init(change: "expired", id: peer.id.description, address: peer.transferAddressDescription)
        }
    }

    /// Runs one download to its end, or until it is cancelled.
    private func execute(_ request: Request) async {
        let id = request.id
        guard let downloader = self.peer.downloader() else {
            self.end(id, as: .failed, error: "this peer only observes")
            return
        }
        let outcome: Result<DownloadResult, any Error>? = await withTaskGroup(
            of: Result<DownloadResult, any Error>?.self
        ) { group in
            group.addTask {
                do {
                    return .success(
                        try await downloader.download(name: request.name, idPrefix: id.description) { progress in
                            self.progress(id, progress)
                        }
                    )
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                for await _ in request.cancel {}
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        self.state.withLock { _ = $0.cancels.removeValue(forKey: id) }
        switch outcome {
        case .success(let result):
            self.metrics?.recordDownload(seconds: result.seconds)
            self.logger.info(
                "gateway download complete",
                metadata: ["file.id": "\(id.short)", "file.path": "\(result.path)", "seconds": "\(result.seconds)"]
            )
            self.end(id, as: .finished, size: result.manifest.size)
        case .failure(let error):
            self.logger.info("gateway download failed", metadata: ["file.id": "\(id.short)", "error": "\(error)"])
            self.end(id, as: Task.isCancelled ? .cancelled : .failed, error: "\(error)")
        case nil:
            self.end(id, as: .cancelled)
        }
    }

    private func progress(_ id: FileID, _ progress: DownloadProgress) {
        let now = self.now
        let event = self.state.withLock { $0.board.progress(id, progress, now: now) }
        if let event { self.publish(.transfer(event)) }
        // Responses waiting on the download look again at every step, evented or not.
        self.wakeWaiters(of: id)
    }

    private func end(_ id: FileID, as state: TransferInfo.State, size: UInt64? = nil, error: String? = nil) {
        let now = self.now
        let event = self.state.withLock { $0.board.end(id, as: state, size: size, error: error, now: now) }
        if let event { self.publish(.transfer(event), about: id) }
    }
}
