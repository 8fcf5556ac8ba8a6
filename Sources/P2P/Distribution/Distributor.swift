import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Spreads chunks through the swarm on its own (the seed's `distribute_files`).
///
/// Every interval it picks a random known peer, asks what it holds, and pushes chunks it
/// lacks that this peer holds, rarest in the swarm first, within a rate limit. So files
/// spread, and stay downloadable after the peer that first shared them leaves.
///
/// Rarity is estimated from a random sample of at most `maximumPeersPerRound` peers, the
/// receiver among them, not from every peer in the table: the table may hold forged
/// entries, and each peer asked is a TCP connection, so a round opens a bounded number of
/// connections and a round starts at most once per interval.
public final class Distributor: Service, Sendable {
    /// Tuning.
    public struct Configuration: Sendable {
        /// Time between rounds; zero turns distribution off.
        public var interval: Duration
        /// Bytes per second pushed at most.
        public var bytesPerSecond: Int64
        /// Peers asked for their inventory in one round at most, the receiver included.
        public var maximumPeersPerRound: Int

        /// The default interval: 10 s, as the seed had it.
        public static let defaultInterval: Duration = .seconds(10)
        /// The default rate: 8 MiB/s, a fraction of a LAN link, so downloads stay fast.
        public static let defaultBytesPerSecond: Int64 = 8 << 20
        /// The default sample: 8 peers, enough to tell rare chunks from common ones.
        public static let defaultMaximumPeersPerRound = 8

        /// Creates a configuration.
        /// - Parameters:
        ///   - interval: time between rounds, zero for off.
        ///   - bytesPerSecond: the push rate limit.
        ///   - maximumPeersPerRound: peers asked per round at most.
        public init(
            interval: Duration = Configuration.defaultInterval,
            bytesPerSecond: Int64 = Configuration.defaultBytesPerSecond,
            maximumPeersPerRound: Int = Configuration.defaultMaximumPeersPerRound
        ) {
            self.interval = interval
            self.bytesPerSecond = bytesPerSecond
            self.maximumPeersPerRound = max(1, maximumPeersPerRound)
        }
    }

    private let store: ChunkStore
    private let table: PeerTable
    private let configuration: Configuration
    private let statistics: TransferStatistics
    private let settings: TransferSettings
    private var logger: Logger { self.settings.logger }

    /// Creates a distributor; it does nothing until `run()`.
    public init(
        store: ChunkStore,
        table: PeerTable,
        configuration: Configuration,
        statistics: TransferStatistics,
        settings: TransferSettings
    ) {
        self.store = store
        self.table = table
        self.configuration = configuration
        self.statistics = statistics
        self.settings = settings
    }

    /// Pushes a round every interval until graceful shutdown.
    public func run() async throws {
        guard self.configuration.interval > .zero, self.configuration.bytesPerSecond > 0 else { return }
        while await sleepUnlessShuttingDown(self.configuration.interval) {
            guard let peer = self.table.servingPeers().randomElement() else { continue }
            do {
                let pushed = try await cancelWhenGracefulShutdown { try await self.pushRound(to: peer) }
                if pushed > 0 {
                    self.logger.debug(
                        "pushed chunks",
                        metadata: ["remote.peer.id": "\(peer.id.short)", "chunk.count": "\(pushed)"]
                    )
                }
            } catch {
                self.logger.debug(
                    "distribution round failed",
                    metadata: ["remote.peer.id": "\(peer.id.short)", "error": "\(error)"]
                )
            }
        }
    }

    /// The peers a round asks: the receiver and random others, `count` in all at most.
    /// - Parameters:
    ///   - receiver: the peer to push to.
    ///   - peers: the serving peers known.
    ///   - count: how many to ask at most.
    /// - Returns: the receiver first, then up to `count - 1` others.
    static func sample(receiver: KnownPeer, among peers: [KnownPeer], count: Int) -> [KnownPeer] {
        var others = peers.filter { $0.id != receiver.id }
        others.shuffle()
        return [receiver] + others.prefix(max(0, count - 1))
    }

    /// One round: learn what `peer` lacks and push it, rarest first, within the budget
    /// of one interval at the rate limit.
    /// - Parameter peer: the receiver.
    /// - Returns: the number of chunks pushed.
    @discardableResult
    public func pushRound(to peer: KnownPeer) async throws -> Int {
        let mine = await self.store.inventory()
        guard !mine.isEmpty else { return 0 }
        // Rarity as far as this peer knows it: from the inventories of a sample of the swarm.
        let others = await Downloader.inventories(
            of: Self.sample(
                receiver: peer,
                among: self.table.servingPeers(),
                count: self.configuration.maximumPeersPerRound
            ),
            settings: self.settings
        )
        guard let theirs = others.first(where: { $0.0.id == peer.id })?.1 else { return 0 }
        var candidates: [(file: InventoryEntry, chunk: Int, holders: Int)] = []
        for entry in mine {
            let theirBitmap = theirs.first { $0.id == entry.id }?.bitmap
            for chunk in entry.bitmap.indices where theirBitmap?.contains(chunk) != true {
                let holders = others.reduce(1) { count, other in
                    count + (other.1.first { $0.id == entry.id }?.bitmap.contains(chunk) == true ? 1 : 0)
                }
                candidates.append((entry, chunk, holders))
            }
        }
        guard !candidates.isEmpty else { return 0 }
        candidates.shuffle()
        candidates.sort { $0.holders < $1.holders }

        let intervalSeconds = self.configuration.interval.seconds
        let budget = Int64(Double(self.configuration.bytesPerSecond) * intervalSeconds)
        let rate = Double(self.configuration.bytesPerSecond)
        return try await TransferClient.connect(
            to: peer.transferAddress,
            settings: self.settings
        ) { session in
            var sent: Int64 = 0
            var count = 0
            var announced = Set<FileID>()
            // A served connection takes only small frames until its first one has arrived
            // (`TransferServer.Limits.openingPayloadLimit`), so the round opens with a
            // request: the first file's manifest. A receiver that has it need not be sent it.
            if let first = candidates.first?.file.id, try await session.manifest(for: first) != nil {
                announced.insert(first)
            }
            let started = ContinuousClock.now
            for candidate in candidates {
                let length = Int64(
                    ChunkSizing.chunkCount(fileSize: candidate.file.size, chunkSize: candidate.file.chunkSize) - 1
                        == candidate.chunk
                        ? Int(candidate.file.size) - candidate.chunk * candidate.file.chunkSize
                        : candidate.file.chunkSize
                )
                guard sent + length <= budget else { break }
                if !announced.contains(candidate.file.id) {
                    guard let manifest = await self.store.manifest(for: candidate.file.id) else { continue }
                    try await session.send(.manifest(manifest.encoded))
                    announced.insert(candidate.file.id)
                }
                guard let bytes = try await self.store.readChunk(candidate.file.id, index: candidate.chunk) else {
                    continue
                }
                try await session.send(.pushedChunk(candidate.file.id, chunk: candidate.chunk, bytes: bytes))
                sent += Int64(bytes.readableBytes)
                count += 1
                // Keep to the rate: no faster than `bytesPerSecond` since the round began.
                let due = Double(sent) / rate
                let elapsed = ContinuousClock.now - started
                let ahead = due - elapsed.seconds
                if ahead > 0.001 { try await Task.sleep(for: .milliseconds(Int(ahead * 1000))) }
            }
            self.statistics.recordPushed(count: count)
            // Half-close and wait for the receiver to close: it has then read everything.
            session.finish()
            _ = try? await session.receive()
            return count
        }
    }
}
