// Fuzzes `TransferMessage(frame:)`, every transfer message kind.
//
// Input: [type] [chunk number, 4 bytes big-endian] [payload ...]
//   The frame is built directly (as the stream decoder hands it over after its checksum
//   verified), so the fuzzer spends no effort on checksums. type = byte % (number of types) covers
//   every frame type (the byte indexes `FrameType.allCases`: the numbers have gaps).
//
// Invariants: a frame that reads as a message
//   - is never `hello` (reserved), and a refused one fails with `protocolViolation`;
//   - gives a message whose `frame()` has the same type, reads back as an equal message,
//     and survives the wire (encode, `Frame.parse`) unchanged;
//   - re-encodes to the same payload bytes (and chunk number, for the kinds that carry
//     one), except where the encoding is lenient by design: a failure message that is not
//     valid UTF-8 or longer than the 512 characters `frame()` sends (a failure's or a
//     connect-back result's);
//   - for inventories: every entry's bitmap count fits its size and chunk size.
import FuzzSupport
import NIOCore
import P2P

/// What a message should read back as after `frame()`: the same, except that `frame()`
/// sends at most 512 characters of a failure message.
func expectedRoundTrip(_ message: TransferMessage) -> TransferMessage {
    if case .failure(let id, let chunk, let reason, let text) = message, text.count > 512 {
        return .failure(id, chunk: chunk, reason: reason, message: String(text.prefix(512)))
    }
    if case .connectBackResult(let reached, let text) = message, text.count > 512 {
        return .connectBackResult(reached: reached, message: String(text.prefix(512)))
    }
    if case .deliveryRefused(let refusal) = message, refusal.message.count > 512 {
        return .deliveryRefused(DeliveryRefusal(refusal.reason, String(refusal.message.prefix(512))))
    }
    return message
}

func carriesChunkNumber(_ type: FrameType) -> Bool {
    switch type {
    case .chunkRequest, .chunkData, .pushedChunk, .failure, .assignedChunk, .workRequest, .assignedPiece, .relayedPiece,
        .relayAbort, .connectBackRequest, .connectBackResult, .deliveryOffer, .deliveryAnswer:
        true
    default: false
    }
}

func check(_ input: [UInt8]) {
    guard input.count >= 5 else { return }
    let type = FrameType.allCases[Int(input[0]) % FrameType.allCases.count]
    let chunkNumber = bigEndian(input, at: 1, as: UInt32.self)
    let payload = Array(input[5...])
    let frame = Frame(type: type, chunkNumber: chunkNumber, payload: ByteBuffer(bytes: payload))

    let message: TransferMessage
    do {
        message = try TransferMessage(frame: frame)
    } catch {
        invariant(error.code == .protocolViolation, "refused with \(error.code): \(error)")
        return
    }
    invariant(type != .hello, "a hello frame was read as \(message)")

    let reframed = message.frame()
    invariant(reframed.type == type, "\(type) re-encoded as \(reframed.type)")
    let back: TransferMessage
    do {
        back = try TransferMessage(frame: reframed)
    } catch {
        fail("\(message) re-encoded to a frame that does not read: \(error)")
    }
    invariant(back == expectedRoundTrip(message), "round trip changed the message: \(message) -> \(back)")

    // Through the wire.
    do {
        let wire = try Frame.parse(reframed.encoded())
        invariant(wire == reframed, "frame changed on the wire")
    } catch {
        fail("re-encoded frame does not parse: \(error)")
    }

    // Byte identity, where the encoding is canonical.
    var canonical = true
    if case .failure(_, _, _, let text) = message {
        let messageBytes = Array(payload.dropFirst(33))
        canonical = String(validating: messageBytes, as: UTF8.self) != nil && text.count <= 512
    }
    if case .connectBackResult(_, let text) = message {
        canonical = String(validating: payload, as: UTF8.self) != nil && text.count <= 512
    }
    if case .deliveryRefused(let refusal) = message {
        canonical = String(validating: payload.dropFirst(), as: UTF8.self) != nil && refusal.message.count <= 512
    }
    if canonical {
        invariant(Array(reframed.payload.readableBytesView) == payload, "\(type) payload not re-encoded identically")
        if carriesChunkNumber(type) {
            invariant(reframed.chunkNumber == chunkNumber, "chunk number \(chunkNumber) -> \(reframed.chunkNumber)")
        }
    }

    if case .inventory(let entries) = message {
        for entry in entries {
            invariant(entry.chunkSize > 0 && entry.chunkSize <= ChunkSizing.maximumChunkSize, "chunk size")
            invariant(
                entry.bitmap.count == ChunkSizing.chunkCount(fileSize: entry.size, chunkSize: entry.chunkSize),
                "bitmap of \(entry.bitmap.count) for \(entry.size) bytes in chunks of \(entry.chunkSize)"
            )
            invariant(FileName.problem(with: entry.name.value) == nil, "unsafe name accepted")
        }
    }
}

/// The seed corpus (`scripts/fuzz.sh --write-seeds`).
func seeds() -> [(name: String, bytes: [UInt8])] {
    do {
        func input(_ type: FrameType, chunk: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
            var bytes: [UInt8] = [UInt8(FrameType.allCases.firstIndex(of: type)!), 0, 0, 0, 0]
            setBigEndian(chunk, in: &bytes, at: 1)
            return bytes + payload
        }
        func input(_ message: TransferMessage) -> [UInt8] {
            let frame = message.frame()
            return input(frame.type, chunk: frame.chunkNumber, payload: Array(frame.payload.readableBytesView))
        }
        var seeds = Samples.messages.map { (name: $0.name, bytes: input($0.message)) }
        let id = [UInt8](repeating: 0x11, count: 32)
        seeds.append(("hello", input(.hello, payload: [1, 2, 3])))
        seeds.append(("inventory-huge-count", input(.inventory, payload: [0xFF, 0xFF, 0xFF, 0xFF] + id)))
        // An entry whose name is a path.
        var entry = id + [0, 6] + Array("../etc".utf8)
        entry += [0, 0, 0, 0, 0, 0, 0, 10] + [0, 4, 0, 0] + [0, 0, 0, 1] + [0x80]
        seeds.append(("inventory-bad-name", input(.inventory, payload: [0, 0, 0, 1] + entry)))
        // An entry whose size is near 2^64.
        var huge = id + [0, 1, UInt8(ascii: "h")]
        huge += [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0] + [0, 0, 0, 1] + [0, 0, 0, 1] + [0x80]
        seeds.append(("inventory-huge-size", input(.inventory, payload: [0, 0, 0, 1] + huge)))
        seeds.append(("manifest-request-short", input(.manifestRequest, payload: Array(id.prefix(31)))))
        seeds.append(("chunk-request-trailing", input(.chunkRequest, chunk: 3, payload: id + [0])))
        seeds.append(("failure-bad-reason", input(.failure, payload: id + [77] + Array("why".utf8))))
        seeds.append(("failure-bad-utf8", input(.failure, payload: id + [1, 0xC3, 0x28, 0xFF])))
        seeds.append(("inventory-request-trailing", input(.inventoryRequest, payload: [0])))
        seeds.append(("collection-list-huge-count", input(.collectionList, payload: [0xFF, 0xFF, 0xFF, 0xFF] + id)))
        var folder = id + [0, 6] + Array("../etc".utf8) + [0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0]
        seeds.append(("collection-list-bad-name", input(.collectionList, payload: [0, 0, 0, 1] + folder)))
        folder = id + [0, 1, UInt8(ascii: "f")] + [0xFF, 0xFF, 0xFF, 0xFF] + [0, 0, 0, 0, 0, 0, 0, 0]
        seeds.append(("collection-list-huge-members", input(.collectionList, payload: [0, 0, 0, 1] + folder)))
        return seeds
    }
}

runFuzzer(seeds: seeds) { data, size in
    check(inputBytes(data, size))
    return 0
}
