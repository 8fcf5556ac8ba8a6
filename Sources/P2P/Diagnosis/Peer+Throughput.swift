import NIOCore

extension Peer {
    /// How fast a peer serves chunks to this one, for `p2p doctor --speed`: chunks of the
    /// file it holds most of are asked for, a window at a time, for `duration`; each answer
    /// is verified against the manifest and counted, and nothing is stored.
    /// - Parameters:
    ///   - peer: the peer to measure.
    ///   - duration: how long to keep asking.
    ///   - window: requests in flight.
    /// - Returns: verified bytes per second, or `nil` if the peer holds no chunk to send.
    /// - Throws: connection errors, `P2PError` when the peer answers with a chunk that
    ///   does not verify or with something other than chunks.
    public func measureThroughput(
        of peer: KnownPeer,
        for duration: Duration = .seconds(2),
        window: Int = 16
    ) async throws -> Double? {
        try await TransferClient.connect(to: peer.transferAddress, settings: self.settings, answerTimeout: .seconds(5))
        {
            session in
            let inventory = try await session.inventory()
            guard
                let entry = inventory.max(by: {
                    Int64($0.bitmap.setCount) * Int64($0.chunkSize) < Int64($1.bitmap.setCount) * Int64($1.chunkSize)
                }), entry.bitmap.setCount > 0,
                let manifest = try await session.manifest(for: entry.id)
            else { return nil }
            // A few dozen chunks asked for over and over: enough to spread over a disk, few
            // enough to list.
            let chunks = Array(entry.bitmap.indices.prefix(64))
            var next = 0
            func request() -> TransferMessage {
                defer { next += 1 }
                return .chunkRequest(entry.id, chunk: chunks[next % chunks.count])
            }
            let started = ContinuousClock.now
            let end = started + duration
            var inFlight = window
            try await session.send((0..<window).map { _ in request() })
            var bytes: Int64 = 0
            while inFlight > 0 {
                let answer = try await session.receive()
                inFlight -= 1
                switch answer {
                case .chunkData(_, let chunk, let data):
                    guard manifest.verify(data, chunk: chunk) else {
                        throw P2PError(code: .corrupt, "chunk \(chunk) of \(manifest.name) does not verify")
                    }
                    bytes += Int64(data.readableBytes)
                case .failure:
                    break
                case let other:
                    throw P2PError(code: .protocolViolation, "expected chunks, got \(other.kind)")
                }
                if ContinuousClock.now < end {
                    try await session.send(request())
                    inFlight += 1
                }
            }
            session.finish()
            let seconds = (ContinuousClock.now - started).seconds
            return seconds > 0 ? Double(bytes) / seconds : nil
        }
    }
}
