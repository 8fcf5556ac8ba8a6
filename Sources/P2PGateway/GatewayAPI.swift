import Foundation
import Hummingbird
import NIOCore
import P2P
import Synchronization

/// The JSON API under `/api`: the swarm's peers and files, the gateway's downloads, an event
/// stream, and starting and cancelling downloads (documented in the README).
final class GatewayAPI: Sendable {
    /// A peer, as `/api/peers` lists it.
    struct PeerInfo: Codable, Equatable {
        var id: String
        /// Its device name, made unique among the peers listed (`PeerNames`), or its short
        /// id when it announces none.
        var name: String
        /// Its transfer address.
        var address: String
        var observer: Bool
        var lastSeenSecondsAgo: Double
        /// Bytes this peer served to the peer's address (peers on one host share it).
        var bytesSent: Int64
        /// Bytes of verified chunks this peer downloaded from it.
        var bytesReceived: Int64
        var sendBytesPerSecond: Double
        var receiveBytesPerSecond: Double
    }

    /// A file of the swarm, as `/api/files` lists it.
    struct FileInfo: Codable, Equatable {
        var id: String
        var name: String
        var size: UInt64
        var chunkCount: Int
        /// Chunks some peer (this one included) holds.
        var availableChunks: Int
        /// Chunks this peer holds.
        var chunksHere: Int
        var holders: [Holder]
    }

    /// Who holds how much of a file.
    struct Holder: Codable, Equatable {
        var peer: String
        /// Its device name as `/api/peers` lists it (the gateway's own for this peer).
        var name: String
        /// Its transfer address; `this peer` for the gateway's own.
        var address: String
        var chunks: Int
        /// Which chunks, as the bitmap's bytes in base64 (chunk 0 is the high bit of the
        /// first byte).
        var bitmap: String
    }

    /// A request to start a download: a name, an id prefix, or both.
    struct StartRequest: Codable {
        var name: String?
        var id: String?
    }

    let peer: Peer
    let downloads: GatewayDownloads
    private let rates = Mutex(RateMeter())
    private let started = ContinuousClock.now

    init(peer: Peer, downloads: GatewayDownloads) {
        self.peer = peer
        self.downloads = downloads
    }

    func peers() -> [PeerInfo] {
        let statistics = self.peer.statistics.snapshot
        var totals: [String: Int64] = [:]
        for (address, bytes) in statistics.bytesServedTo { totals["sent \(address)"] = bytes }
        for (peer, bytes) in statistics.bytesReceivedFrom {
            if let peer { totals["received \(peer)"] = bytes }
        }
        let now = (ContinuousClock.now - self.started).seconds
        let rates = self.rates.withLock { $0.sample(totals, now: now) }
        let clock = NIODeadline.now()
        let known = self.peer.table.all()
        let names = PeerNames(known)
        return known.map { known in
            let host = known.transferAddress.ipAddress ?? ""
            return PeerInfo(
                id: known.id.description,
                name: names.label(known.id),
                address: known.transferAddressDescription,
                observer: known.isObserver,
                lastSeenSecondsAgo: Double((clock - known.lastSeen).nanoseconds) / 1e9,
                bytesSent: totals["sent \(host)"] ?? 0,
                bytesReceived: totals["received \(known.id)"] ?? 0,
                sendBytesPerSecond: rates["sent \(host)"] ?? 0,
                receiveBytesPerSecond: rates["received \(known.id)"] ?? 0
            )
        }
    }

    func files() async -> [FileInfo] {
        let local = await self.peer.store?.inventory() ?? []
        let inventories = await self.peer.swarmInventories()
        var addresses = [self.peer.id: "this peer"]
        for (known, _) in inventories { addresses[known.id] = known.transferAddressDescription }
        let names = PeerNames(self.peer.table.all())
        let ownName = self.peer.configuration.discovery.name?.value ?? self.peer.id.short
        let files = Downloader.swarmFiles(inventories, local: (self.peer.id, local))
        return files.map { file in
            FileInfo(
                id: file.id.description,
                name: file.name.value,
                size: file.size,
                chunkCount: file.chunkCount,
                availableChunks: file.availableChunks,
                chunksHere: file.holders[self.peer.id]?.setCount ?? 0,
                holders: file.holders.sorted { $0.key < $1.key }.map { id, bitmap in
                    Holder(
                        peer: id.description,
                        name: id == self.peer.id ? ownName : names.label(id),
                        address: addresses[id] ?? "",
                        chunks: bitmap.setCount,
                        bitmap: Data(bitmap.bytes).base64EncodedString()
                    )
                }
            )
        }
    }

    /// Starts a download of the file a request names.
    /// - Returns: the download, 202; or the error.
    func start(_ request: StartRequest) async -> Response {
        guard request.name != nil || request.id != nil else {
            return GatewayResponses.error(P2PError(code: .invalidArgument, "give a name, an id, or both"))
        }
        do {
            if let name = request.name { _ = try FileName(name) }
            if let id = request.id, id.isEmpty || id.count > 64 || !id.allSatisfy(\.isHexDigit) {
                throw P2PError(code: .invalidArgument, "id takes hex digits of the file id")
            }
            let local = await self.peer.store?.inventory() ?? []
            let file = try await GatewayFiles.swarmFile(
                name: request.name,
                idPrefix: request.id,
                peer: self.peer,
                local: local
            )
            guard let info = self.downloads.fetch(file.id, name: file.name.value, size: file.size) else {
                throw P2PError(code: .invalidArgument, "the gateway is shutting down")
            }
            return GatewayResponses.json(info, status: .accepted)
        } catch let error as P2PError {
            return GatewayResponses.error(error)
        } catch {
            return GatewayResponses.error(P2PError(code: .invalidArgument, "\(error)"))
        }
    }

    /// The event stream: the downloads as they stand, then every change as it happens.
    func events() -> Response {
        let events = self.downloads.events()
        let current = self.downloads.all()
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let body = ResponseBody { writer in
            var opening = ": p2p events\n\n"
            for info in current { opening += GatewayEvent.transfer(info).serverSentEvent }
            try await writer.write(ByteBuffer(string: opening))
            for await event in events {
                try await writer.write(ByteBuffer(string: event.serverSentEvent))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}
