import Crypto
import Foundation
import Logging
import NIOCore

/// Authenticates a transfer connection with the swarm's key and then encrypts every
/// frame's payload, between the frame codec and the async channel.
///
/// Handshake (hello frames, in the clear):
/// ```
/// client → server   hello: client nonce (32 random bytes)
/// server → client   hello: server nonce (32) ‖ HMAC(K, "server" ‖ nonces)
/// client → server   hello: HMAC(K, "client" ‖ nonces)
/// ```
/// Each side proves it knows the transfer key K without revealing it, and both nonces are
/// fresh, so a recorded handshake cannot be replayed. Each direction then has its own
/// AES-GCM key, HKDF(K, nonces); every frame's payload is sealed with a counter nonce
/// and the frame's type and chunk number as authenticated data. A frame that does not
/// open closes the connection. Frames the async code writes before the handshake ends
/// wait here, and nothing from the peer reaches it before.
final class SecureChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = Frame
    typealias InboundOut = Frame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    /// Which end of the connection this is.
    enum Role {
        case client
        case server
    }

    private enum State {
        case awaitingServerHello(clientNonce: [UInt8])
        case awaitingClientHello
        case awaitingClientProof(clientNonce: [UInt8], serverNonce: [UInt8])
        case established
        case failed
    }

    private static let nonceLength = 32
    /// AES-GCM's nonce (12 bytes), at the front of a sealed box's combined bytes.
    private static let gcmNonceLength = 12
    private static let proofLength = 32
    private static let tagLength = 16

    private let key: NetworkKey
    private let role: Role
    private let logger: Logger
    private let handshakeTimeout: TimeAmount
    private var state: State
    private var pendingWrites: [(Frame, EventLoopPromise<Void>?)] = []
    private var sealKey: SymmetricKey? = nil
    private var openKey: SymmetricKey? = nil
    private var sealCounter: UInt64 = 0
    private var openCounter: UInt64 = 0
    private var timeout: Scheduled<Void>? = nil

    init(key: NetworkKey, role: Role, handshakeTimeout: TimeAmount = .seconds(5), logger: Logger) {
        self.key = key
        self.role = role
        self.logger = logger
        self.handshakeTimeout = handshakeTimeout
        switch role {
        case .client: self.state = .awaitingServerHello(clientNonce: Self.randomBytes(Self.nonceLength))
        case .server: self.state = .awaitingClientHello
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard self.timeout == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let limit = self.handshakeTimeout
        self.timeout = context.eventLoop.scheduleTask(in: limit) {
            let (handler, context) = bound.value
            handler.fail(context: context, "no authenticated handshake within \(limit)")
        }
        if case .awaitingServerHello(let clientNonce) = self.state {
            context.writeAndFlush(
                self.wrapOutboundOut(Frame(type: .hello, payload: ByteBuffer(bytes: clientNonce))),
                promise: nil
            )
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timeout?.cancel()
        self.failPending(P2PError(code: .protocolViolation, "the connection closed before it was authenticated"))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch self.state {
        case .established:
            guard frame.type != .hello, let opened = self.open(frame) else {
                self.fail(context: context, "a frame failed authentication")
                return
            }
            context.fireChannelRead(self.wrapInboundOut(opened))
        case .awaitingServerHello(let clientNonce):
            guard frame.type == .hello, frame.payload.readableBytes == Self.nonceLength + Self.proofLength else {
                self.fail(context: context, "the peer did not answer the handshake (no network key, or another one?)")
                return
            }
            var payload = frame.payload
            let serverNonce = payload.readBytes(length: Self.nonceLength)!
            let proof = payload.readBytes(length: Self.proofLength)!
            guard self.key.verify(proof: proof, role: "server", clientNonce: clientNonce, serverNonce: serverNonce)
            else {
                self.fail(context: context, "the peer does not know the network key")
                return
            }
            let mine = self.key.proof(role: "client", clientNonce: clientNonce, serverNonce: serverNonce)
            context.write(self.wrapOutboundOut(Frame(type: .hello, payload: ByteBuffer(bytes: mine))), promise: nil)
            self.establish(context: context, clientNonce: clientNonce, serverNonce: serverNonce)
        case .awaitingClientHello:
            guard frame.type == .hello, frame.payload.readableBytes == Self.nonceLength else {
                self.fail(context: context, "refused a connection without the network key handshake")
                return
            }
            let clientNonce = Array(frame.payload.readableBytesView)
            let serverNonce = Self.randomBytes(Self.nonceLength)
            let proof = self.key.proof(role: "server", clientNonce: clientNonce, serverNonce: serverNonce)
            self.state = .awaitingClientProof(clientNonce: clientNonce, serverNonce: serverNonce)
            context.writeAndFlush(
                self.wrapOutboundOut(Frame(type: .hello, payload: ByteBuffer(bytes: serverNonce + proof))),
                promise: nil
            )
        case .awaitingClientProof(let clientNonce, let serverNonce):
            guard frame.type == .hello, frame.payload.readableBytes == Self.proofLength,
                self.key.verify(
                    proof: Array(frame.payload.readableBytesView),
                    role: "client",
                    clientNonce: clientNonce,
                    serverNonce: serverNonce
                )
            else {
                self.fail(context: context, "refused a peer that does not know the network key")
                return
            }
            self.establish(context: context, clientNonce: clientNonce, serverNonce: serverNonce)
        case .failed:
            return
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = self.unwrapOutboundIn(data)
        switch self.state {
        case .established:
            context.write(self.wrapOutboundOut(self.seal(frame)), promise: promise)
        case .awaitingServerHello, .awaitingClientHello, .awaitingClientProof:
            self.pendingWrites.append((frame, promise))
        case .failed:
            promise?.fail(P2PError(code: .protocolViolation, "the connection was not authenticated"))
        }
    }

    func flush(context: ChannelHandlerContext) {
        if case .established = self.state { context.flush() }
    }

    private func establish(context: ChannelHandlerContext, clientNonce: [UInt8], serverNonce: [UInt8]) {
        self.timeout?.cancel()
        let toServer = self.key.sessionKey(
            direction: "client to server",
            clientNonce: clientNonce,
            serverNonce: serverNonce
        )
        let toClient = self.key.sessionKey(
            direction: "server to client",
            clientNonce: clientNonce,
            serverNonce: serverNonce
        )
        switch self.role {
        case .client:
            self.sealKey = toServer
            self.openKey = toClient
        case .server:
            self.sealKey = toClient
            self.openKey = toServer
        }
        self.state = .established
        let pending = self.pendingWrites
        self.pendingWrites = []
        for (frame, promise) in pending {
            context.write(self.wrapOutboundOut(self.seal(frame)), promise: promise)
        }
        context.flush()
    }

    private func fail(context: ChannelHandlerContext, _ reason: String) {
        if case .failed = self.state { return }
        self.state = .failed
        self.timeout?.cancel()
        let error = P2PError(code: .protocolViolation, reason)
        self.logger.info(
            "closed an unauthenticated transfer connection",
            metadata: ["peer.address": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")", "error": "\(reason)"]
        )
        self.failPending(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failPending(_ error: any Error) {
        let pending = self.pendingWrites
        self.pendingWrites = []
        for (_, promise) in pending { promise?.fail(error) }
    }

    // MARK: Sealing

    private static func nonce(_ counter: UInt64) -> AES.GCM.Nonce {
        var bytes = [UInt8](repeating: 0, count: 4)
        withUnsafeBytes(of: counter.bigEndian) { bytes.append(contentsOf: $0) }
        return try! AES.GCM.Nonce(data: bytes)  // 12 bytes: always valid
    }

    private static func associatedData(_ frame: Frame) -> [UInt8] {
        [frame.type.rawValue] + withUnsafeBytes(of: frame.chunkNumber.bigEndian) { Array($0) }
    }

    private func seal(_ frame: Frame) -> Frame {
        let nonce = Self.nonce(self.sealCounter)
        self.sealCounter += 1
        // Sealing cannot fail with a valid key and nonce.
        let box = frame.payload.withUnsafeReadableBytes { bytes in
            try! AES.GCM.seal(bytes, using: self.sealKey!, nonce: nonce, authenticating: Self.associatedData(frame))
        }
        // The box holds nonce ‖ ciphertext ‖ tag (`combined` exists for a 12-byte nonce);
        // the payload is ciphertext ‖ tag, copied once from raw bytes, rather than two
        // writes of `Data` slices. This copy into a new buffer is, after AES itself, what
        // encryption costs a seeder most (swift-crypto seals only into a `Data` of its own).
        var payload = ByteBuffer()
        box.combined!.withUnsafeBytes { combined in
            payload = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: combined[Self.gcmNonceLength...]))
        }
        return Frame(type: frame.type, chunkNumber: frame.chunkNumber, payload: payload)
    }

    private func open(_ frame: Frame) -> Frame? {
        guard frame.payload.readableBytes >= Self.tagLength, let key = self.openKey else { return nil }
        let nonce = Self.nonce(self.openCounter)
        self.openCounter += 1
        // Ciphertext and tag go to swift-crypto straight from the received bytes (it copies
        // them once into its sealed box), and the plaintext is copied out once as raw bytes:
        // two copies of the chunk where there were three.
        let plain = frame.payload.withUnsafeReadableBytes { bytes -> Data? in
            let split = bytes.count - Self.tagLength
            guard
                let box = try? AES.GCM.SealedBox(
                    nonce: nonce,
                    ciphertext: UnsafeRawBufferPointer(rebasing: bytes[..<split]),
                    tag: UnsafeRawBufferPointer(rebasing: bytes[split...])
                )
            else { return nil }
            return try? AES.GCM.open(box, using: key, authenticating: Self.associatedData(frame))
        }
        guard let plain else { return nil }
        let payload = plain.withUnsafeBytes { ByteBuffer(bytes: $0) }
        return Frame(type: frame.type, chunkNumber: frame.chunkNumber, payload: payload)
    }

    private static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

@available(*, unavailable)
extension SecureChannelHandler: Sendable {}
