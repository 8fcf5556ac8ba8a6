import Foundation
import Logging
import NIOCore
import NIOPosix
import _NIOFileSystem

@testable import P2P

/// A peer in the test process that offers one folder whose collection manifest is
/// handcrafted bytes (hostile paths the library's own encoder would refuse), under the id
/// those bytes hash to, so only the receiver's checks of the entries stand in the way.
struct LyingCollectionPeer {
    /// Runs the peer on loopback in `swarm` for the duration of `body`.
    /// - Parameters:
    ///   - name: the folder's name in its collection list.
    ///   - manifest: the encoded collection manifest it serves.
    ///   - swarm: whose discovery port it announces on.
    ///   - body: the test, while it runs.
    static func with<Result: Sendable>(
        name: String,
        manifest: [UInt8],
        in swarm: TestSwarm,
        _ body: @Sendable () async throws -> Result
    ) async throws -> Result {
        let logger = TransferFixtures.logger
        let server = try await TransferServer.bind(
            host: "127.0.0.1",
            port: 0,
            settings: TransferSettings(logger: logger),
            responder: Responder(name: try FileName(name), manifest: manifest)
        )
        let discovery = PeerDiscovery(
            peerID: PeerID.random(),
            transferPort: server.port,
            configuration: DiscoveryConfiguration(
                port: swarm.discoveryPort,
                announceInterval: .milliseconds(Int64(swarm.announceInterval * 1000)),
                interfaceNames: ["lo"]
            ),
            logger: logger
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            group.addTask { try await discovery.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// Encodes a collection manifest as the wire does, entries in the order given,
    /// without any check: what a lying peer can send.
    /// - Parameters:
    ///   - name: the folder's name.
    ///   - files: path and size of each file (every file id is 32 bytes of 7).
    /// - Returns: the bytes.
    static func encode(name: String, files: [(path: String, size: UInt64)]) -> [UInt8] {
        var bytes = Array("P2PC".utf8) + [1, 0]
        func string(_ value: String) {
            let utf8 = Array(value.utf8)
            bytes += [UInt8(utf8.count >> 8), UInt8(utf8.count & 0xFF)] + utf8
        }
        string(name)
        bytes += withUnsafeBytes(of: UInt32(files.count).bigEndian) { Array($0) }
        bytes += [0, 0, 0, 0]
        for file in files {
            string(file.path)
            bytes += [UInt8](repeating: 7, count: 32)
            bytes += withUnsafeBytes(of: file.size.bigEndian) { Array($0) }
        }
        return bytes
    }

    /// Answers collection lists and collection manifests with the handcrafted folder, and
    /// inventories with nothing.
    private struct Responder: TransferResponder {
        let name: FileName
        let manifest: [UInt8]

        func serve(
            inbound: NIOAsyncChannelInboundStream<Frame>,
            outbound: NIOAsyncChannelOutboundWriter<Frame>,
            remote: SocketAddress?,
            channel: any Channel
        ) async throws {
            let id = FileID(hashing: self.manifest)
            for try await frame in inbound {
                switch try TransferMessage(frame: frame) {
                case .inventoryRequest:
                    try await outbound.write(TransferMessage.inventory([]).frame())
                case .collectionListRequest:
                    let entry = CollectionEntry(id: id, name: self.name, totalSize: 1, memberIDs: [id])
                    try await outbound.write(TransferMessage.collectionList([entry]).frame())
                case .collectionManifestRequest:
                    try await outbound.write(TransferMessage.collectionManifest(self.manifest).frame())
                default:
                    return
                }
            }
        }
    }
}
