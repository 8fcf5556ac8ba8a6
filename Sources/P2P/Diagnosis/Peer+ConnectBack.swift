import NIOCore

extension Peer {
    /// Asks peers to connect back to this host's transfer port (`p2p doctor`): the check
    /// that they can reach this host, not only this host them.
    ///
    /// While the peers are asked, `port` is served by a listener that answers inventory
    /// requests with an empty inventory, unless something already holds the port (a peer
    /// serving on this host, whose port is then the one worth testing).
    /// - Parameters:
    ///   - peers: the peers to ask, one at a time.
    ///   - port: the port they are to reach.
    /// - Returns: the port the peers were asked to reach (the one bound, when `port` is 0),
    ///   and for each peer whether its connection back was answered, and what it said; a
    ///   peer that closes the connection instead runs a p2p without the request.
    public func askConnectBack(
        of peers: [KnownPeer],
        to port: Int
    ) async -> (port: Int, answers: [PeerID: (reached: Bool, message: String)]) {
        let listener = try? await TransferServer.bind(
            host: self.configuration.bindHost,
            port: port,
            settings: self.settings,
            responder: EmptyInventoryResponder()
        )
        let target = listener?.port ?? port
        let answers = await withTaskGroup(of: Void.self) { group in
            if let listener { group.addTask { try? await listener.run() } }
            defer { group.cancelAll() }
            var answers: [PeerID: (reached: Bool, message: String)] = [:]
            for peer in peers {
                do {
                    answers[peer.id] = try await TransferClient.connect(
                        to: peer.transferAddress,
                        settings: self.settings,
                        answerTimeout: .seconds(10)
                    ) { session in
                        try await session.send(.connectBackRequest(port: target))
                        switch try await session.receive() {
                        case .connectBackResult(let reached, let message):
                            session.finish()
                            return (reached, message)
                        case let other:
                            throw P2PError(
                                code: .protocolViolation,
                                "expected a connect-back result, got \(other.kind)"
                            )
                        }
                    }
                } catch {
                    answers[peer.id] = (false, "no answer to the request (a p2p without it?): \(error)")
                }
            }
            return answers
        }
        return (target, answers)
    }
}

/// Serves a connect-back: an empty inventory to every inventory request; anything else
/// ends the connection.
struct EmptyInventoryResponder: TransferResponder {
    func serve(
        inbound: NIOAsyncChannelInboundStream<Frame>,
        outbound: NIOAsyncChannelOutboundWriter<Frame>,
        remote: SocketAddress?,
        channel: any Channel
    ) async throws {
        for try await frame in inbound {
            guard case .inventoryRequest = try TransferMessage(frame: frame) else {
                throw P2PError(code: .protocolViolation, "only inventory requests are answered here")
            }
            try await outbound.write(TransferMessage.inventory([]).frame())
        }
    }
}
