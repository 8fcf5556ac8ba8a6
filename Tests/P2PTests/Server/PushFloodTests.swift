import NIOCore
import NIOPosix
import Testing

@testable import P2P

/// A transfer connection from a chosen loopback address (127.0.0.0/8 is all local), so
/// that one test can be several peers as the server's per-address limits see them.
func connectTransfer(from source: String, to address: SocketAddress) async throws -> NIOAsyncChannel<Frame, Frame> {
    try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(to: try SocketAddress(ipAddress: source, port: 0))
        .connect(to: address) { channel in
            channel.eventLoop.makeCompletedFuture {
                try TransferConnection.configure(channel, maximumPayloadLength: Frame.defaultMaximumPayloadLength)
            }
        }
}

extension TransferServerTests {
    @Test("a peer that pushes valid chunks past its allowance is cut off; downloads and other addresses go on")
    func pushFlood() async throws {
        // Genuine chunks of a file the server does not share: every push verifies.
        let source = try StorageFixture()
        defer { source.remove() }
        let (origin, manifest, chunks, _) = try await source.origin(sharing: "spread.bin", size: 2_000_000, seed: 5)
        let pushedID = manifest.id
        await origin.close()
        #expect(chunks.count == 8)
        let round =
            [TransferMessage.manifest(manifest.encoded).frame()]
            + chunks.indices.map { TransferMessage.pushedChunk(pushedID, chunk: $0, bytes: chunks[$0]).frame() }

        // Room for the manifest and four chunks per address, refilled only after an hour.
        let allowance = PushAllowance(bytesPerInterval: (1 << 20) + (64 << 10), interval: .seconds(3600))
        let statistics = TransferStatistics()
        try await self.withServer(size: 2_000_000, pushAllowance: allowance, statistics: statistics) {
            address,
            id,
            data in
            try await withThrowingTaskGroup(of: Void.self) { group in
                // An honest download from the same server, at the same time.
                group.addTask {
                    let downloaded: [UInt8] = try await TransferClient.connect(to: address, settings: .test) {
                        session in
                        let served = try #require(try await session.manifest(for: id))
                        var joined: [UInt8] = []
                        for index in 0..<served.chunkCount {
                            try await session.send(.chunkRequest(id, chunk: index))
                            guard case .chunkData(_, index, let bytes) = try await session.receive() else {
                                throw P2PError(code: .protocolViolation, "expected chunk \(index)")
                            }
                            joined += Array(bytes.readableBytesView)
                        }
                        return joined
                    }
                    #expect(downloaded == data)
                }
                // The pusher: the same eight chunks over and over, at most 20 times (40 MB).
                group.addTask {
                    let pusher = try await connectTransfer(from: "127.0.0.2", to: address)
                    try await pusher.executeThenClose { inbound, outbound in
                        do {
                            // A small request first, as a distributor opens (its answer is
                            // drained below).
                            try await outbound.write(TransferMessage.manifestRequest(pushedID).frame())
                            for _ in 0..<20 { try await outbound.write(contentsOf: round) }
                        } catch {
                            // Cut off mid-write: what the test is waiting for.
                        }
                        // The server closes the connection: the stream ends (or fails), nothing comes.
                        let closed = try await withTimeout(.seconds(10), "the server to close the pusher") {
                            do {
                                for try await _ in inbound {}
                            } catch {}
                            return true
                        }
                        #expect(closed)
                    }
                }
                try await group.waitForAll()
            }
            let counted = statistics.snapshot
            #expect(counted.pushesStored == 4, "\(counted)")
            #expect(counted.pushesRefused >= 10, "\(counted)")
            // Another address has an allowance of its own: its push is kept.
            let other = try await connectTransfer(from: "127.0.0.3", to: address)
            try await other.executeThenClose { inbound, outbound in
                try await outbound.write(
                    contentsOf: [
                        TransferMessage.manifestRequest(pushedID).frame(), round[0], round[5],
                        TransferMessage.inventoryRequest.frame(),
                    ]
                )
                let answer = try await withTimeout(.seconds(10), "an inventory") { () -> Frame? in
                    for try await frame in inbound where frame.type == .inventory { return frame }
                    return nil
                }
                guard let frame = answer, case .inventory(let entries) = try TransferMessage(frame: frame) else {
                    Issue.record("expected an inventory, got \(String(describing: answer))")
                    return
                }
                #expect(entries.first { $0.id == pushedID }?.bitmap.indices == [0, 1, 2, 3, 4])
            }
        }
    }
}
