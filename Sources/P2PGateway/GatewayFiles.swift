import Logging
import NIOCore
import P2P

/// Finds the file an HTTP request names and reads its chunks for the response: from this
/// peer's store when it holds them, otherwise through a download of the peer's own that
/// the response follows chunk by chunk. Every chunk is checked against the manifest before
/// a byte of it is sent, also one read from a shared file (which another program may have
/// changed), so the bytes always match the entity tag.
struct GatewayFiles: Sendable {
    /// A file found for a request.
    struct Found: Sendable {
        var manifest: Manifest
        /// Whether a download of the peer's own supplies the chunks not held here.
        var isFetched: Bool
    }

    let peer: Peer
    let store: ChunkStore
    let downloads: GatewayDownloads
    let logger: Logger

    /// The file a name (or id prefix) means: one held here whole by that name, else the
    /// one the swarm offers, which a download then fetches (the request waits for its
    /// manifest).
    /// - Parameters:
    ///   - name: the file's name, or `nil` to go by id.
    ///   - idPrefix: hex digits the id starts with, if given.
    ///   - fetch: whether a file not held here is fetched (not for `HEAD`, which only asks).
    /// - Returns: the file.
    /// - Throws: `P2PError`: `notFound`, `ambiguous`, `badName`, or why the download failed.
    func locate(name: String?, idPrefix: String?, fetch: Bool) async throws -> Found {
        if let name { _ = try FileName(name) }
        let local = await self.store.inventory()
        let held = local.filter { entry in
            entry.bitmap.isComplete && (name.map { entry.name.value == $0 } ?? true)
                && (idPrefix.map { entry.id.description.hasPrefix($0.lowercased()) } ?? true)
        }
        if held.count > 1 {
            throw P2PError(
                code: .ambiguous,
                "'\(name ?? idPrefix ?? "")' names \(held.count) files held here: "
                    + held.map(\.id.short).joined(separator: ", ") + "; ask for /files/id/FILEID"
            )
        }
        if let only = held.first, let manifest = await self.store.manifest(for: only.id) {
            return Found(manifest: manifest, isFetched: false)
        }
        let file = try await Self.swarmFile(name: name, idPrefix: idPrefix, peer: self.peer, local: local)
        guard fetch else {
            // A HEAD answers what a GET would, from the manifest alone.
            guard let downloader = self.peer.downloader() else {
                throw P2PError(code: .notFound, "this peer only observes")
            }
            return Found(manifest: try await downloader.manifest(of: file), isFetched: false)
        }
        self.downloads.fetch(file.id, name: file.name.value, size: file.size)
        let info = await self.downloads.waitUntilFetching(file.id)
        if let info, info.state == .failed || info.state == .cancelled {
            throw P2PError(code: .notFound, "cannot fetch \(file.name): \(info.error ?? info.state.rawValue)")
        }
        guard let manifest = await self.store.manifest(for: file.id) else {
            throw P2PError(code: .notFound, "no manifest for \(file.name) (\(file.id.short))")
        }
        return Found(manifest: manifest, isFetched: info != nil && info?.state != .finished)
    }

    /// The swarm's file a name (or id prefix) means. One look at the swarm first, which
    /// counts this peer's own partial files; when it finds nothing, the look goes on as
    /// `get`'s does, again as peers are heard: a gateway whose peer started a moment ago
    /// has not heard the swarm yet, and a 404 then would be wrong.
    /// - Parameters:
    ///   - name: the file's name, or `nil` to go by id.
    ///   - idPrefix: hex digits the id starts with, if given.
    ///   - peer: the gateway's peer.
    ///   - local: the peer's own inventory.
    /// - Returns: the file.
    /// - Throws: `P2PError` (`notFound`, `ambiguous`).
    static func swarmFile(
        name: String?,
        idPrefix: String?,
        peer: Peer,
        local: [InventoryEntry]
    ) async throws -> SwarmFile {
        let swarm = Downloader.swarmFiles(await peer.swarmInventories(), local: (peer.id, local))
        do {
            return try Downloader.resolve(name: name, idPrefix: idPrefix, in: swarm)
        } catch let error as P2PError where error.code == .notFound {
            guard let downloader = peer.downloader() else { throw error }
            return try await downloader.find(name: name, idPrefix: idPrefix)
        }
    }

    /// One chunk, verified, once it is held.
    /// - Parameters:
    ///   - index: the chunk.
    ///   - found: the file.
    /// - Returns: the chunk's bytes.
    /// - Throws: `P2PError` when the chunk cannot be had or fails verification (the
    ///   response is then cut short: its length promised more).
    func chunk(_ index: Int, of found: Found) async throws -> ByteBuffer {
        let id = found.manifest.id
        // Each turn waits for a write or for the download to move: bounded by the download.
        while true {
            if let bytes = try await self.store.readChunk(id, index: index) {
                guard found.manifest.verify(bytes, chunk: index) else {
                    self.logger.warning(
                        "chunk changed on disk after it was verified; response cut short",
                        metadata: ["file.id": "\(id.short)", "chunk.index": "\(index)"]
                    )
                    throw P2PError(code: .corrupt, "chunk \(index) of \(found.manifest.name) does not verify")
                }
                return bytes
            }
            guard found.isFetched else {
                throw P2PError(code: .notFound, "chunk \(index) of \(found.manifest.name) is no longer held here")
            }
            try await self.downloads.waitForChunk(id, index: index)
        }
    }
}
