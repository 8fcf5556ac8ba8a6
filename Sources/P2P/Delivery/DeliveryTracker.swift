/// The sender's side of `p2p send`: who the targets are, where each one's delivery stands
/// (offered, accepted or refused, fetching, verified with a receipt, or missing at the
/// deadline), what to do next for each, and whether the send is over. No socket, task or
/// clock inside: `Peer.deliver` feeds it what the table and the connections say, with the
/// time.
///
/// A target takes the items one after the other on one connection each; every target
/// fetches the same item at the same time, so the swarm shares it (the sender sends each
/// chunk once). A connection that ends without an answer is offered again after
/// `retryDelay`: the target keeps what it fetched and resumes.
public struct DeliveryTracker: Sendable {
    /// Who is to receive.
    public enum Selection: Sendable, Equatable {
        /// Every peer heard before the deadline that accepts deliveries.
        case all
        /// The peers these texts name: a device name, its `name#id` form, or an id prefix.
        case named([String])
    }

    /// Where one target's delivery stands.
    public enum Phase: Sendable, Equatable {
        /// Heard; the next item is about to be offered.
        case waiting
        /// Offered; no answer yet.
        case offered
        /// Accepted; the target is fetching.
        case fetching
        /// Every item verified, each with a valid receipt.
        case verified
        /// Does not take deliveries; under `--to all` it is not a target.
        case notAccepting
        /// Refused, or accepted and could not finish.
        case refused(DeliveryRefusal)
        /// Its receipt did not verify under the network key.
        case forgedReceipt
        /// The connection ended without an answer; offered again at `retryAt`.
        case interrupted(String)

        /// Whether nothing more will happen to the target.
        var isSettled: Bool {
            switch self {
            case .verified, .notAccepting, .refused, .forgedReceipt: true
            case .waiting, .offered, .fetching, .interrupted: false
            }
        }
    }

    /// One target.
    public struct Target: Sendable {
        /// The peer.
        public let id: PeerID
        /// How it is shown: its name, made unique among the peers heard.
        public fileprivate(set) var label: String
        /// Where its delivery stands.
        public fileprivate(set) var phase: Phase = .waiting
        /// The item being offered or fetched (its index in `items`).
        public fileprivate(set) var itemIndex = 0
        /// Bytes of that item the target holds, as it last said.
        public fileprivate(set) var bytes: UInt64 = 0
        /// Its fetching rate, smoothed.
        public fileprivate(set) var bytesPerSecond = 0.0
        /// Its receipts, one per verified item.
        public fileprivate(set) var receipts: [DeliveryReceipt] = []
        fileprivate var offer: DeliveryOffer?
        fileprivate var retryAt: ContinuousClock.Instant?
        fileprivate var lastSample: (bytes: UInt64, at: ContinuousClock.Instant)?
    }

    /// What a target's task does next.
    public enum Step: Sendable, Equatable {
        /// Open a connection and make this offer.
        case offer(DeliveryOffer)
        /// Wait until then, then ask again.
        case wait(until: ContinuousClock.Instant)
        /// Nothing more: the target is settled, or the deadline has passed.
        case stop
    }

    /// Whether the send is over.
    public enum Verdict: Sendable, Equatable {
        /// Not yet.
        case going
        /// Every target verified every item.
        case delivered
        /// Every target is settled, and some refused or failed: one line each.
        case failed([String])
        /// The deadline passed: one line for each target (or name) that is missing something.
        case timedOut([String])
    }

    /// What is sent.
    public let items: [DeliveryItem]
    /// Who receives.
    public let selection: Selection
    /// The sending peer.
    public let sender: PeerID
    /// The network key, which receipts are checked with.
    let key: NetworkKey
    /// When the sender gives up; `nil` for never.
    public let deadline: ContinuousClock.Instant?
    /// Under `--to all`, how long after the last new peer the send may end: peers that are
    /// up are heard within a second of the start.
    let quietPeriod: Duration
    /// How long after a lost connection a target is offered the delivery again.
    let retryDelay: Duration

    /// The targets, by peer id.
    public private(set) var targets: [PeerID: Target] = [:]
    /// Names (`--to`) and the peer each resolved to.
    private var resolved: [String: PeerID] = [:]
    /// Names that cannot be resolved (they name several peers, or this sender), and why.
    private var unresolvable: [String: String] = [:]
    /// When a target was last added (or the send started).
    private var lastNewTarget: ContinuousClock.Instant

    /// Starts tracking a send.
    /// - Parameters:
    ///   - items: what is sent, at least one item.
    ///   - selection: who receives.
    ///   - sender: this peer's id.
    ///   - key: the network key receipts are checked with.
    ///   - now: the time the send starts.
    ///   - timeout: how long it may take; `nil` for no limit.
    ///   - quietPeriod: under `--to all`, how long after the last new target it may end.
    ///   - retryDelay: how long after a lost connection a target is offered again.
    public init(
        items: [DeliveryItem],
        selection: Selection,
        sender: PeerID,
        key: NetworkKey,
        now: ContinuousClock.Instant,
        timeout: Duration?,
        quietPeriod: Duration = .seconds(2),
        retryDelay: Duration = .seconds(1)
    ) {
        self.items = items
        self.selection = selection
        self.sender = sender
        self.key = key
        self.deadline = timeout.map { now + $0 }
        self.quietPeriod = quietPeriod
        self.retryDelay = retryDelay
        self.lastNewTarget = now
    }

    /// Total bytes of the items.
    public var totalBytes: UInt64 { self.items.reduce(0) { $0 + $1.size } }

    // MARK: Events

    /// The peers now heard: names are resolved and new targets added.
    /// - Parameters:
    ///   - peers: the serving peers in the table.
    ///   - now: the time.
    /// - Returns: the targets added, each to be given a task that asks `nextStep`.
    public mutating func heard(_ peers: [KnownPeer], now: ContinuousClock.Instant) -> [KnownPeer] {
        let others = peers.filter { $0.id != self.sender }
        let names = PeerNames(others)
        for id in self.targets.keys { self.targets[id]?.label = names.label(id) }
        var added: [KnownPeer] = []
        func add(_ peer: KnownPeer) {
            guard self.targets[peer.id] == nil else { return }
            self.targets[peer.id] = Target(id: peer.id, label: names.label(peer.id))
            self.lastNewTarget = now
            added.append(peer)
        }
        switch self.selection {
        case .all:
            for peer in others { add(peer) }
        case .named(let texts):
            for text in texts where self.resolved[text] == nil && self.unresolvable[text] == nil {
                do {
                    let peer = try names.find(text)
                    self.resolved[text] = peer.id
                    add(peer)
                } catch let error as P2PError where error.code == .ambiguous {
                    self.unresolvable[text] = error.message
                } catch {
                    // Not heard yet: it may come online before the deadline.
                }
            }
        }
        return added
    }

    /// What a target's task does next: make an offer, wait, or stop.
    /// - Parameters:
    ///   - id: the target.
    ///   - number: a fresh offer number, used if an offer is made.
    ///   - now: the time.
    public mutating func nextStep(for id: PeerID, number: [UInt8], now: ContinuousClock.Instant) -> Step {
        guard var target = self.targets[id] else { return .stop }
        if let deadline = self.deadline, now >= deadline { return .stop }
        switch target.phase {
        case .verified, .notAccepting, .refused, .forgedReceipt:
            return .stop
        case .interrupted:
            if let retryAt = target.retryAt, now < retryAt { return .wait(until: retryAt) }
        case .waiting, .offered, .fetching:
            break
        }
        let remaining = self.deadline.map { max(1, Int(($0 - now).components.seconds) + 1) } ?? 0
        let offer = DeliveryOffer(
            number: number,
            sender: self.sender,
            target: id,
            item: self.items[target.itemIndex],
            waitSeconds: remaining
        )
        target.offer = offer
        target.retryAt = nil
        target.phase = .offered
        self.targets[id] = target
        return .offer(offer)
    }

    /// The target answered the offer: accepted (`refusal` nil) or refused.
    public mutating func answered(_ id: PeerID, refusal: DeliveryRefusal?, now: ContinuousClock.Instant) {
        guard var target = self.targets[id], target.offer != nil else { return }
        if let refusal {
            switch refusal.reason {
            case .busy:
                // Fetching it for an earlier offer: asked again once that one is over.
                target.phase = .interrupted(refusal.message)
                target.retryAt = now + self.retryDelay
            case .notAccepting where self.selection == .all:
                target.phase = .notAccepting
            case .notAccepting, .noKey, .quota, .diskSpace, .fileExists, .notAddressed, .failed:
                target.phase = .refused(refusal)
            }
            target.offer = nil
        } else {
            target.phase = .fetching
        }
        self.targets[id] = target
    }

    /// The target says how many bytes of the item it holds.
    public mutating func progressed(_ id: PeerID, bytes: UInt64, now: ContinuousClock.Instant) {
        guard var target = self.targets[id], target.offer != nil else { return }
        if let last = target.lastSample, last.bytes <= bytes {
            let seconds = (now - last.at).seconds
            if seconds >= 0.2 {
                let instant = Double(bytes - last.bytes) / seconds
                target.bytesPerSecond =
                    target.bytesPerSecond == 0 ? instant : 0.6 * target.bytesPerSecond + 0.4 * instant
                target.lastSample = (bytes, now)
            }
        } else {
            target.lastSample = (bytes, now)
        }
        target.bytes = bytes
        self.targets[id] = target
    }

    /// The target sent a receipt for its current offer.
    /// - Returns: whether it verified; a receipt that does not settles the target as failed.
    @discardableResult
    public mutating func receipt(_ id: PeerID, tag: [UInt8], now: ContinuousClock.Instant) -> Bool {
        guard var target = self.targets[id], let offer = target.offer else { return false }
        let receipt = DeliveryReceipt(offer: offer, tag: tag)
        target.offer = nil
        guard receipt.isValid(with: self.key) else {
            target.phase = .forgedReceipt
            self.targets[id] = target
            return false
        }
        target.receipts.append(receipt)
        target.itemIndex += 1
        target.bytes = 0
        target.lastSample = nil
        target.bytesPerSecond = target.itemIndex == self.items.count ? 0 : target.bytesPerSecond
        target.phase = target.itemIndex == self.items.count ? .verified : .waiting
        self.targets[id] = target
        return true
    }

    /// The target's connection ended (or could not be made) before it answered for good.
    public mutating func connectionEnded(_ id: PeerID, reason: String, now: ContinuousClock.Instant) {
        guard var target = self.targets[id], !target.phase.isSettled else { return }
        target.phase = .interrupted(reason)
        target.offer = nil
        target.retryAt = now + self.retryDelay
        target.bytesPerSecond = 0
        target.lastSample = nil
        self.targets[id] = target
    }

    // MARK: Reading

    /// Whether the send is over, and how.
    public func verdict(now: ContinuousClock.Instant) -> Verdict {
        let counted = self.targets.values.filter { $0.phase != .notAccepting }
        let allVerified =
            self.unresolvable.isEmpty && counted.allSatisfy { $0.phase == .verified }
            && {
                switch self.selection {
                case .all: !counted.isEmpty && now - self.lastNewTarget >= self.quietPeriod
                case .named(let texts): texts.allSatisfy { self.resolved[$0] != nil }
                }
            }()
        if allVerified { return .delivered }
        if let deadline = self.deadline, now >= deadline { return .timedOut(self.missing()) }
        let pending =
            counted.contains { !$0.phase.isSettled }
            || {
                switch self.selection {
                case .all: counted.isEmpty || now - self.lastNewTarget < self.quietPeriod
                case .named(let texts): texts.contains { self.resolved[$0] == nil && self.unresolvable[$0] == nil }
                }
            }()
        return pending ? .going : .failed(self.missing())
    }

    /// One line for each target, or name, that lacks something, sorted.
    public func missing() -> [String] {
        var lines: [String] = []
        for target in self.targets.values where target.phase != .verified && target.phase != .notAccepting {
            let what =
                target.itemIndex < self.items.count
                ? "\(self.items[target.itemIndex].name) (\(target.bytes) of \(self.items[target.itemIndex].size) bytes)"
                : "nothing"
            let missingItems = self.items.count - target.itemIndex
            let more = missingItems > 1 ? " and \(missingItems - 1) more" : ""
            lines.append("\(target.label): missing \(what)\(more): \(Self.describe(target.phase))")
        }
        for (text, reason) in self.unresolvable { lines.append("\(text): \(reason)") }
        switch self.selection {
        case .all:
            if !self.targets.values.contains(where: { $0.phase != .notAccepting }) {
                lines.append("no peer that accepts deliveries was heard")
            }
        case .named(let texts):
            for text in texts where self.resolved[text] == nil && self.unresolvable[text] == nil {
                lines.append("\(text): no such peer heard")
            }
        }
        return lines.sorted()
    }

    /// A target's state in a few words.
    public static func describe(_ phase: Phase) -> String {
        switch phase {
        case .waiting: "waiting"
        case .offered: "offered"
        case .fetching: "fetching"
        case .verified: "verified"
        case .notAccepting: "not accepting"
        case .refused(let refusal): "refused: \(refusal.message)"
        case .forgedReceipt: "its receipt does not verify under the network key"
        case .interrupted(let reason): "interrupted (\(reason)), offering again"
        }
    }

    /// How much of everything a target holds, 0...1.
    public func share(of target: Target) -> Double {
        let total = self.totalBytes
        guard total > 0 else { return target.phase == .verified ? 1 : 0 }
        let done = self.items.prefix(target.itemIndex).reduce(UInt64(0)) { $0 + $1.size } + target.bytes
        return min(1, Double(done) / Double(total))
    }

    /// Every receipt, target by target.
    public var receipts: [DeliveryReceipt] {
        self.targets.values.sorted { $0.label < $1.label }.flatMap(\.receipts)
    }
}
