import NIOCore
import Synchronization

extension Peer {
    /// Delivers items this peer holds to other peers (`p2p send`): offers them to every
    /// target as it is heard, one connection per target and item, and follows each target's
    /// answer, progress and receipt, until every target has verified everything, every one
    /// is settled, or the timeout passes. The targets fetch through the swarm, as `get`
    /// does; this peer serves them like any other downloaders.
    ///
    /// The decisions are `DeliveryTracker`'s; this drives the connections.
    /// - Parameters:
    ///   - items: what to deliver; each must be held whole here.
    ///   - selection: to whom.
    ///   - timeout: how long to try; `nil` for no limit.
    ///   - quietPeriod: under `.all`, how long after the last new target the send may end.
    ///   - update: called with the tracker whenever something may have changed (at least
    ///     four times a second), for a live display.
    /// - Returns: the tracker at the end: its verdict, targets and receipts.
    /// - Throws: `P2PError` (`invalidArgument`) without a network key: receipts need it.
    public func deliver(
        _ items: [DeliveryItem],
        to selection: DeliveryTracker.Selection,
        timeout: Duration?,
        quietPeriod: Duration = .seconds(2),
        update: @escaping @Sendable (DeliveryTracker) -> Void = { _ in }
    ) async throws -> DeliveryTracker {
        guard let key = self.configuration.networkKey else {
            throw P2PError(
                code: .invalidArgument,
                "send needs the network key (--secret, --secret-file or P2P_SECRET): targets take deliveries "
                    + "only from peers that hold it, and sign their receipts with it"
            )
        }
        let state = DeliveryState(
            DeliveryTracker(
                items: items,
                selection: selection,
                sender: self.id,
                key: key,
                now: ContinuousClock.now,
                timeout: timeout,
                quietPeriod: quietPeriod
            )
        )
        let wakeup = Wakeup()
        let eventLoop = self.settings.group.next()
        let joins = self.table.events()
        return await withTaskGroup(of: Void.self) { group in
            group.addTask { await Downloader.signal(wakeup, onEachJoinIn: joins) }
            while !Task.isCancelled {
                let now = ContinuousClock.now
                let peers = self.table.servingPeers()
                let added = state.tracker.withLock { $0.heard(peers, now: now) }
                for peer in added {
                    group.addTask { await self.deliver(to: peer, state: state, wakeup: wakeup) }
                }
                let (verdict, snapshot) = state.tracker.withLock { ($0.verdict(now: now), $0) }
                update(snapshot)
                guard verdict == .going else { break }
                await wakeup.wait(atMost: .milliseconds(250), on: eventLoop)
            }
            group.cancelAll()
            return state.tracker.withLock { $0 }
        }
    }

    /// One target's task: offers it each item in turn, as the tracker says, and reports
    /// what the target answers.
    private func deliver(to peer: KnownPeer, state: DeliveryState, wakeup: Wakeup) async {
        while !Task.isCancelled {
            let step = state.tracker.withLock {
                $0.nextStep(for: peer.id, number: DeliveryOffer.freshNumber(), now: ContinuousClock.now)
            }
            switch step {
            case .stop:
                return
            case .wait(let until):
                try? await Task.sleep(until: until, clock: .continuous)
            case .offer(let offer):
                let address = self.table.peer(peer.id)?.transferAddress ?? peer.transferAddress
                do {
                    try await TransferClient.connect(
                        to: address,
                        settings: self.settings,
                        answerTimeout: Self.deliveryAnswerTimeout
                    ) { session in
                        try await session.send(.deliveryOffer(offer))
                        while true {
                            let message = try await session.receive()
                            let now = ContinuousClock.now
                            defer { wakeup.signal() }
                            switch message {
                            case .deliveryAccepted:
                                state.tracker.withLock { $0.answered(peer.id, refusal: nil, now: now) }
                            case .deliveryProgress(let bytes):
                                state.tracker.withLock { $0.progressed(peer.id, bytes: bytes, now: now) }
                            case .deliveryRefused(let refusal):
                                state.tracker.withLock { $0.answered(peer.id, refusal: refusal, now: now) }
                                session.finish()
                                return
                            case .deliveryReceipt(let tag):
                                _ = state.tracker.withLock { $0.receipt(peer.id, tag: tag, now: now) }
                                session.finish()
                                return
                            default:
                                throw P2PError(code: .protocolViolation, "unexpected \(message.kind) in a delivery")
                            }
                        }
                    }
                } catch {
                    state.tracker.withLock { $0.connectionEnded(peer.id, reason: "\(error)", now: ContinuousClock.now) }
                }
                wakeup.signal()
            }
        }
    }

    /// How long a target may say nothing during a delivery: it reports progress every
    /// second while it fetches.
    static let deliveryAnswerTimeout: Duration = .seconds(30)
}

/// A send's tracker, shared by the send's tasks.
final class DeliveryState: Sendable {
    let tracker: Mutex<DeliveryTracker>

    init(_ tracker: DeliveryTracker) {
        self.tracker = Mutex(tracker)
    }
}
