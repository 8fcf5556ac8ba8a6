import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Takes deliveries (`serve --accept`): answers each offer with the decision of
/// `DeliveryAcceptance`, fetches what it accepts through the swarm with the peer's own
/// `Downloader` (exactly as `get` would), tells the sender how far it has come once a second,
/// and ends with a receipt authenticated by the network key, or the reason it could not
/// finish.
///
/// The fetch lives as long as the sender's connection: when the sender goes away the fetch
/// stops, and what arrived stays in the partial file for the next offer.
public final class DeliveryReceiver: Sendable {
    private let acceptance: Mutex<DeliveryAcceptance>
    private let store: ChunkStore
    private let downloader: Downloader
    private let key: NetworkKey?
    private let logger: Logger
    /// How often the sender is told how far the fetch has come.
    static let progressInterval: Duration = .seconds(1)

    /// Creates the receiver.
    /// - Parameters:
    ///   - policy: whether deliveries are taken, and the quota and room kept free.
    ///   - me: this peer's id.
    ///   - key: the network key; without one nothing is taken.
    ///   - store: where deliveries go.
    ///   - downloader: what fetches them.
    ///   - logger: where to log.
    public init(
        policy: DeliveryPolicy,
        me: PeerID,
        key: NetworkKey?,
        store: ChunkStore,
        downloader: Downloader,
        logger: Logger
    ) {
        self.acceptance = Mutex(DeliveryAcceptance(policy: policy, me: me, hasKey: key != nil))
        self.store = store
        self.downloader = downloader
        self.key = key
        self.logger = logger
    }

    /// Whether deliveries are taken now.
    public var isAccepting: Bool { self.acceptance.withLock { $0.policy.accepting } }

    /// Turns taking deliveries on or off (the shell's `accept on|off`).
    /// - Throws: `P2PError` (`invalidArgument`) when turning it on without a network key.
    public func setAccepting(_ accepting: Bool) throws(P2PError) {
        if accepting && self.key == nil {
            throw P2PError(
                code: .invalidArgument,
                "deliveries are taken only from peers that hold the network key: start with --secret, "
                    + "--secret-file or P2P_SECRET"
            )
        }
        self.acceptance.withLock { $0.policy.accepting = accepting }
    }

    /// Answers one offer on the connection it came on, and, if accepted, fetches the item
    /// and sends the receipt.
    /// - Parameters:
    ///   - offer: the offer.
    ///   - outbound: the connection's writer.
    ///   - remote: who sent it, for the log.
    /// - Throws: when the connection fails.
    func receive(
        _ offer: DeliveryOffer,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?
    ) async throws {
        let item = offer.item
        let existing: DeliveryAcceptance.Existing
        let here: Bool
        let conflict: String?
        switch item.kind {
        case .file:
            here = await self.store.hasComplete(item.id)
            conflict = await self.store.conflict(name: item.name, id: item.id)
        case .collection:
            here = await self.store.hasCollection(item.id)
            conflict = await self.store.conflict(folderName: item.name, id: item.id)
        }
        if here {
            existing = .sameItem
        } else if let conflict {
            existing = .different(conflict)
        } else {
            existing = .nothing
        }
        let free = Self.freeBytes(at: "\(self.store.configuration.downloadsDirectory)")
        let decision = self.acceptance.withLock { $0.decide(offer, existing: existing, freeBytes: free) }
        let metadata: Logger.Metadata = [
            "remote.peer.id": "\(offer.sender.short)",
            "peer.address": "\(remote?.ipAddress ?? "?"):\(remote?.port ?? 0)",
            "file.id": "\(item.id.short)", "file.name": "\(item.name)", "file.size": "\(item.size)",
        ]
        switch decision {
        case .refuse(let refusal):
            self.logger.info("delivery refused", metadata: metadata.merging(["reason": "\(refusal)"]) { $1 })
            try await outbound.write(TransferMessage.deliveryRefused(refusal).frame())
        case .alreadyHere:
            self.logger.info("delivery already here", metadata: metadata)
            try await outbound.write(TransferMessage.deliveryAccepted.frame())
            try await self.sendReceipt(for: offer, outbound: outbound)
        case .fetch:
            self.logger.info("delivery accepted", metadata: metadata)
            defer { self.acceptance.withLock { $0.fetchEnded(item.id) } }
            try await outbound.write(TransferMessage.deliveryAccepted.frame())
            try await self.fetch(offer, outbound: outbound, metadata: metadata)
        }
    }

    private func fetch(
        _ offer: DeliveryOffer,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        metadata: Logger.Metadata
    ) async throws {
        let item = offer.item
        let held = HeldBytes()
        let outcome: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
            group.addTask {
                do {
                    try await self.fetch(item, within: offer.waitSeconds > 0 ? .seconds(offer.waitSeconds) : nil) {
                        held.count.store($0, ordering: .relaxed)
                    }
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            // The sender hears how far the fetch has come; a write that fails means the
            // sender has gone, and the fetch stops (its partial file stays).
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.progressInterval)
                    guard !Task.isCancelled else { break }
                    let bytes = held.count.load(ordering: .relaxed)
                    do {
                        try await outbound.write(TransferMessage.deliveryProgress(bytes: bytes).frame())
                    } catch {
                        return .failure(error)
                    }
                }
                return nil
            }
            var outcome: Result<Void, any Error> = .failure(CancellationError())
            for await result in group {
                guard let result else { continue }
                outcome = result
                break
            }
            group.cancelAll()
            return outcome
        }
        switch outcome {
        case .success:
            self.logger.info("delivery verified", metadata: metadata)
            try await outbound.write(TransferMessage.deliveryProgress(bytes: item.size).frame())
            try await self.sendReceipt(for: offer, outbound: outbound)
        case .failure(let error):
            self.logger.info("delivery not finished", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            try await outbound.write(
                TransferMessage.deliveryRefused(DeliveryRefusal(.failed, "could not finish: \(error)")).frame()
            )
        }
    }

    /// Fetches an offered item through the swarm, as `get` would: a file with the peer's
    /// own download, a folder as `get FOLDER` does; either is checked against the offer's
    /// name and size (from the verified manifest) before anything is written.
    /// - Parameters:
    ///   - item: what was offered.
    ///   - timeout: how long the sender waits.
    ///   - held: told the bytes held so far.
    private func fetch(
        _ item: DeliveryItem,
        within timeout: Duration?,
        held: @escaping @Sendable (UInt64) -> Void
    ) async throws {
        let notTheOffered = { @Sendable (kind: String, name: FileName, size: UInt64) in
            P2PError(
                code: .corrupt,
                "the \(kind) offered as \(item.name) (\(item.size) bytes) is \(name) (\(size) bytes) by its manifest"
            )
        }
        switch item.kind {
        case .file:
            _ = try await self.downloader.download(
                name: nil,
                idPrefix: item.id.description,
                timeout: timeout,
                progress: { held(UInt64(max($0.bytesHeld, 0))) },
                admit: { manifest in
                    guard manifest.name == item.name, manifest.size == item.size else {
                        throw notTheOffered("file", manifest.name, manifest.size)
                    }
                }
            )
        case .collection:
            let deadline = timeout.map { ContinuousClock.now + $0 }
            let found = try await self.downloader.lookUpItem(
                name: nil,
                idPrefix: item.id.description,
                deadline: deadline,
                foldersOnly: true
            )
            guard case .collection(let collection) = found else {
                throw P2PError(code: .notFound, "no peer offers the folder \(item.name) (\(item.id.short))")
            }
            _ = try await self.downloader.downloadCollection(
                collection,
                timeout: deadline.map { $0 - ContinuousClock.now },
                progress: { held(UInt64(max($0.bytesHeld, 0))) },
                admit: { manifest in
                    guard manifest.id == item.id, manifest.name == item.name, manifest.totalSize == item.size else {
                        throw notTheOffered("folder", manifest.name, manifest.totalSize)
                    }
                },
                pack: item.pack
            )
        }
    }

    private func sendReceipt(for offer: DeliveryOffer, outbound: NIOAsyncChannelOutboundWriter<Frame>) async throws {
        guard let key = self.key else { return }
        let receipt = DeliveryReceipt(signing: offer, with: key)
        try await outbound.write(TransferMessage.deliveryReceipt(tag: receipt.tag).frame())
    }

    /// Bytes an unprivileged user may still write on the file system that holds `path`;
    /// `nil` if it cannot be asked.
    static func freeBytes(at path: String) -> Int64? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }
}

/// Bytes a delivery's fetch holds, as its progress last said: written by the download,
/// read by the task that tells the sender.
private final class HeldBytes: Sendable {
    let count = Atomic<UInt64>(0)
}
