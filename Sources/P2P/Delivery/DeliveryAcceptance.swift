/// What a peer takes deliveries under (`serve --accept`, `--accept-max-bytes`,
/// `--accept-keep-free`).
public struct DeliveryPolicy: Sendable, Equatable {
    /// Whether deliveries are taken at all.
    public var accepting: Bool
    /// The most bytes of deliveries taken in this run; `nil` for no quota.
    public var maximumBytes: Int64?
    /// Bytes the downloads folder's disk keeps free after a delivery.
    public var keepFreeBytes: Int64

    /// Creates a policy; by default deliveries are refused.
    public init(accepting: Bool = false, maximumBytes: Int64? = nil, keepFreeBytes: Int64 = 0) {
        self.accepting = accepting
        self.maximumBytes = maximumBytes
        self.keepFreeBytes = keepFreeBytes
    }
}

/// A receiver's decision on each delivery offer, from its policy, its key, the quota taken
/// so far, the room on its disk and what its downloads folder already holds. No disk, socket
/// or clock inside: the driver (`DeliveryReceiver`) looks, and passes what it saw in.
public struct DeliveryAcceptance: Sendable {
    /// What the downloads folder holds at the item's name.
    public enum Existing: Sendable, Equatable {
        /// Nothing.
        case nothing
        /// This very item, verified: the delivery is done at once.
        case sameItem
        /// Something else, described.
        case different(String)
    }

    /// What to do with an offer.
    public enum Decision: Sendable, Equatable {
        /// Fetch it through the swarm.
        case fetch
        /// It is here already: answer with a receipt at once.
        case alreadyHere
        /// Refuse it, telling the sender why.
        case refuse(DeliveryRefusal)
    }

    /// The policy in force (the shell's `accept on|off` changes it).
    public var policy: DeliveryPolicy
    /// This peer's id: offers for another peer are refused.
    public let me: PeerID
    /// Whether this peer has a network key; without one nobody's identity is proven, so
    /// nothing is taken.
    public let hasKey: Bool
    /// The items taken in this run and their sizes, which count against the quota once
    /// each (an item offered again, to resume it, is not counted twice).
    public private(set) var taken: [FileID: UInt64] = [:]
    /// The items being fetched now: one fetch per item at a time.
    public private(set) var fetching: Set<FileID> = []

    /// Creates the decision-maker.
    public init(policy: DeliveryPolicy, me: PeerID, hasKey: Bool) {
        self.policy = policy
        self.me = me
        self.hasKey = hasKey
    }

    /// Bytes taken against the quota so far.
    public var takenBytes: UInt64 { self.taken.values.reduce(0, +) }

    /// Decides on an offer; one to fetch is counted against the quota and as being fetched
    /// until `fetchEnded`.
    /// - Parameters:
    ///   - offer: the offer.
    ///   - existing: what the downloads folder holds at the item's name.
    ///   - freeBytes: bytes free on the downloads folder's disk; `nil` if unknown.
    /// - Returns: fetch, done already, or refuse with the reason.
    public mutating func decide(
        _ offer: DeliveryOffer,
        existing: Existing,
        freeBytes: Int64?
    ) -> Decision {
        guard self.policy.accepting else {
            return .refuse(DeliveryRefusal(.notAccepting, "does not accept deliveries (serve --accept)"))
        }
        guard self.hasKey else {
            return .refuse(DeliveryRefusal(.noKey, "has no network key, so it accepts nothing"))
        }
        guard offer.target == self.me else {
            return .refuse(DeliveryRefusal(.notAddressed, "the offer is for peer \(offer.target.short)"))
        }
        let item = offer.item
        if self.fetching.contains(item.id) {
            return .refuse(DeliveryRefusal(.busy, "is fetching \(item.name) for another offer already"))
        }
        switch existing {
        case .sameItem:
            return .alreadyHere
        case .different(let what):
            return .refuse(DeliveryRefusal(.fileExists, "\(what), not the offered \(item.name) (id \(item.id.short))"))
        case .nothing:
            break
        }
        if self.taken[item.id] == nil, let maximum = self.policy.maximumBytes {
            let after = self.takenBytes + item.size
            if after > UInt64(max(maximum, 0)) {
                return .refuse(
                    DeliveryRefusal(
                        .quota,
                        "over its quota (--accept-max-bytes \(maximum)): \(item.name) is \(item.size) bytes, "
                            + "\(self.takenBytes) taken already"
                    )
                )
            }
        }
        if let freeBytes {
            // A folder's pack lies on disk beside the files cut from it until the cut is
            // done: its small files need room twice. The offer does not say how large the
            // pack is, so the room counted is all it may be.
            let packRoom = item.pack == nil ? 0 : min(item.size, CollectionPack.maximumSize)
            let room = item.size &+ packRoom
            let needed = room &+ UInt64(max(self.policy.keepFreeBytes, 0))
            if needed > UInt64(max(freeBytes, 0)) {
                let what = packRoom > 0 ? "\(room) bytes with its pack" : "\(item.size) bytes"
                return .refuse(
                    DeliveryRefusal(
                        .diskSpace,
                        "too little free space: \(item.name) needs \(what), \(freeBytes) free, "
                            + "keeping \(self.policy.keepFreeBytes) free"
                    )
                )
            }
        }
        self.taken[item.id] = item.size
        self.fetching.insert(item.id)
        return .fetch
    }

    /// The fetch of an item `decide` said to fetch has ended, however it ended.
    public mutating func fetchEnded(_ id: FileID) {
        self.fetching.remove(id)
    }
}
