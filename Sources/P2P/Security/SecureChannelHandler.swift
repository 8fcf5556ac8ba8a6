import Crypto
import Foundation
import Logging
import NIOCore

/// Authenticates a transfer connection with the swarm's key and then encrypts every
/// frame's payload, between the frame codec and the async channel.
///
/// The handshake's decisions are `Handshake`'s: this handler sends the hellos it says,
/// enforces its deadline, and seals with the keys it ends with. Each side proves it knows
/// the transfer key without revealing it, and both nonces are fresh, so a recorded
/// handshake cannot be replayed. Each direction has its own AES-GCM key; every frame's
/// payload is sealed as records of up to 64 KiB, each with the next counter nonce and the
/// frame's type, chunk number and plaintext length as authenticated data. A frame that does
/// not open closes the connection. Frames the async code writes before the handshake ends
/// wait here, and nothing from the peer reaches it before.
final class SecureChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = Frame
    typealias InboundOut = Frame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    /// Which end of the connection this is.
    typealias Role = Handshake.Role

    /// Sent toward the socket once the handshake has succeeded: the handlers below may now
    /// take what only an authenticated peer may send (a server's frame reader accepts
    /// full-size frames from then on).
    struct Authenticated: Sendable {}

    /// AES-GCM's nonce (12 bytes), at the front of a sealed box's combined bytes.
    private static let gcmNonceLength = 12
    private static let tagLength = 16

    private let logger: Logger
    private let handshakeTimeout: TimeAmount
    private var handshake: Handshake
    private var failed = false
    private var pendingWrites: [(Frame, EventLoopPromise<Void>?)] = []
    private var sealKey: SymmetricKey? = nil
    private var openKey: SymmetricKey? = nil
    private var sealCounter: UInt64 = 0
    private var openCounter: UInt64 = 0
    private var timeout: Scheduled<Void>? = nil

    init(key: NetworkKey, role: Role, handshakeTimeout: TimeAmount = .seconds(5), logger: Logger) {
        self.logger = logger
        self.handshakeTimeout = handshakeTimeout
        self.handshake = Handshake(key: key, role: role, nonce: Self.randomBytes(Handshake.nonceLength))
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
            handler.perform(handler.handshake.fail("no authenticated handshake within \(limit)"), context: context)
        }
        self.perform(self.handshake.start(), context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timeout?.cancel()
        self.failPending(P2PError(code: .protocolViolation, "the connection closed before it was authenticated"))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard !self.failed else { return }
        guard self.handshake.isEstablished else {
            let hello = frame.type == .hello ? Array(frame.payload.readableBytesView) : nil
            self.perform(self.handshake.received(hello: hello), context: context)
            return
        }
        guard frame.type != .hello, let opened = self.open(frame, allocator: context.channel.allocator) else {
            self.fail(context: context, "a frame failed authentication")
            return
        }
        context.fireChannelRead(self.wrapInboundOut(opened))
    }

    /// Does what the handshake says.
    private func perform(_ action: Handshake.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            return
        case .send(let payload):
            context.writeAndFlush(
                self.wrapOutboundOut(Frame(type: .hello, payload: ByteBuffer(bytes: payload))),
                promise: nil
            )
        case .sendAndEstablish(let payload, let keys):
            context.write(self.wrapOutboundOut(Frame(type: .hello, payload: ByteBuffer(bytes: payload))), promise: nil)
            self.establish(keys, context: context)
        case .establish(let keys):
            self.establish(keys, context: context)
        case .fail(let reason):
            self.fail(context: context, reason)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = self.unwrapOutboundIn(data)
        if self.failed {
            promise?.fail(P2PError(code: .protocolViolation, "the connection was not authenticated"))
        } else if self.handshake.isEstablished {
            context.write(
                self.wrapOutboundOut(self.seal(frame, allocator: context.channel.allocator)),
                promise: promise
            )
        } else {
            self.pendingWrites.append((frame, promise))
        }
    }

    func flush(context: ChannelHandlerContext) {
        if self.handshake.isEstablished && !self.failed { context.flush() }
    }

    private func establish(_ keys: Handshake.SessionKeys, context: ChannelHandlerContext) {
        self.timeout?.cancel()
        self.sealKey = keys.seal
        self.openKey = keys.open
        context.triggerUserOutboundEvent(Authenticated(), promise: nil)
        let pending = self.pendingWrites
        self.pendingWrites = []
        for (frame, promise) in pending {
            context.write(
                self.wrapOutboundOut(self.seal(frame, allocator: context.channel.allocator)),
                promise: promise
            )
        }
        context.flush()
    }

    private func fail(context: ChannelHandlerContext, _ reason: String) {
        if self.failed { return }
        self.failed = true
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

    /// The most plaintext one AES-GCM record holds. A frame's payload is sealed as records of
    /// this size (the last one shorter), each `ciphertext ‖ tag` with the next counter nonce.
    /// Why not one record per frame: swift-crypto seals into, and opens into, buffers of its
    /// own, so every record costs copies; at 64 KiB those buffers are reused by malloc and
    /// stay in cache, where a 1 MiB record took fresh pages (slow first touches on a VM) and
    /// went to memory for each copy.
    static let recordLength = 64 << 10

    /// How many records seal `plaintextLength` bytes: an empty payload is one empty record.
    static func recordCount(plaintextLength: Int) -> Int {
        max(1, (plaintextLength + Self.recordLength - 1) / Self.recordLength)
    }

    /// The plaintext length of a sealed payload of `sealedLength` bytes, or nil if no
    /// sequence of records has that length (a last record shorter than its tag).
    static func plaintextLength(sealedLength: Int) -> Int? {
        let sealedRecord = Self.recordLength + Self.tagLength
        let records = max(1, (sealedLength + sealedRecord - 1) / sealedRecord)
        guard sealedLength - (records - 1) * sealedRecord >= Self.tagLength else { return nil }
        return sealedLength - records * Self.tagLength
    }

    private static func nonce(_ counter: UInt64) -> AES.GCM.Nonce {
        var bytes = [UInt8](repeating: 0, count: 4)
        withUnsafeBytes(of: counter.bigEndian) { bytes.append(contentsOf: $0) }
        return try! AES.GCM.Nonce(data: bytes)  // 12 bytes: always valid
    }

    /// Every record of a frame authenticates the frame's type, chunk number and whole
    /// plaintext length: with the counter nonces (records in order, none skipped), a frame
    /// cut short, or a record moved to another frame, fails to open.
    private static func associatedData(_ frame: Frame, plaintextLength: Int) -> [UInt8] {
        var bytes: [UInt8] = [frame.type.rawValue]
        withUnsafeBytes(of: frame.chunkNumber.bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(plaintextLength).bigEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    private func seal(_ frame: Frame, allocator: ByteBufferAllocator) -> Frame {
        let length = frame.payload.readableBytes
        let records = Self.recordCount(plaintextLength: length)
        let associatedData = Self.associatedData(frame, plaintextLength: length)
        var sealed = allocator.buffer(capacity: length + records * Self.tagLength)
        frame.payload.withUnsafeReadableBytes { plaintext in
            var start = 0
            for _ in 0..<records {
                let end = min(start + Self.recordLength, length)
                let nonce = Self.nonce(self.sealCounter)
                self.sealCounter += 1
                // Sealing cannot fail with a valid key and nonce.
                let box = try! AES.GCM.seal(
                    UnsafeRawBufferPointer(rebasing: plaintext[start..<end]),
                    using: self.sealKey!,
                    nonce: nonce,
                    authenticating: associatedData
                )
                // `combined` (nonce ‖ ciphertext ‖ tag) is the box's own storage for a
                // 12-byte nonce: one copy of the record, from raw bytes.
                box.combined!.withUnsafeBytes { combined in
                    _ = sealed.writeBytes(UnsafeRawBufferPointer(rebasing: combined[Self.gcmNonceLength...]))
                }
                start = end
            }
        }
        return Frame(type: frame.type, chunkNumber: frame.chunkNumber, payload: sealed)
    }

    private func open(_ frame: Frame, allocator: ByteBufferAllocator) -> Frame? {
        let sealedLength = frame.payload.readableBytes
        guard let key = self.openKey, let length = Self.plaintextLength(sealedLength: sealedLength) else {
            return nil
        }
        let records = Self.recordCount(plaintextLength: length)
        let associatedData = Self.associatedData(frame, plaintextLength: length)
        var plain = allocator.buffer(capacity: length)
        let opened = frame.payload.withUnsafeReadableBytes { sealed -> Bool in
            var start = 0
            for _ in 0..<records {
                let end = min(start + Self.recordLength + Self.tagLength, sealedLength)
                let nonce = Self.nonce(self.openCounter)
                self.openCounter += 1
                guard
                    let box = try? AES.GCM.SealedBox(
                        nonce: nonce,
                        ciphertext: UnsafeRawBufferPointer(rebasing: sealed[start..<(end - Self.tagLength)]),
                        tag: UnsafeRawBufferPointer(rebasing: sealed[(end - Self.tagLength)..<end])
                    ),
                    let record = try? AES.GCM.open(box, using: key, authenticating: associatedData)
                else { return false }
                record.withUnsafeBytes { _ = plain.writeBytes($0) }
                start = end
            }
            return true
        }
        guard opened else { return nil }
        return Frame(type: frame.type, chunkNumber: frame.chunkNumber, payload: plain)
    }

    private static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

@available(*, unavailable)
extension SecureChannelHandler: Sendable {}
