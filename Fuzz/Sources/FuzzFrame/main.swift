// Fuzzes the frame parser (`Frame.parse`, `Frame.read`) and the stream decoder
// (`FrameDecoder` driven by NIO's single-step processor, as `ByteToMessageHandler` drives it).
//
// Input: [flags] [limit] [stream bytes ...]
//   flags bit 0: before parsing, rewrite the checksum of every frame the stream holds, so
//                that the fuzzer gets past the checksum and explores payloads and streams
//   flags bit 1: maximum payload length = limit * 4 (instead of the 16 MiB + 1 KiB default),
//                so that "frame too large" is reachable with small inputs
//   flags bit 2: feed the stream decoder one byte at a time (otherwise random splits)
//
// Invariants:
//   - `Frame.read` consumes nothing on `nil` and on error; each frame it reads re-encodes
//     to exactly the bytes it consumed;
//   - `Frame.parse` agrees with `Frame.read` (one frame using every byte, else the right
//     error), and a parsed frame re-encodes to the input; the reader index does not matter;
//   - the stream decoder fed the stream whole, in random splits or byte by byte yields the
//     same frames and the same error as `Frame.read` in a loop, and keeps the same
//     unprocessed bytes; where the stream ends inside a payload, it reports
//     `truncatedPayload` at the end instead (it took those bytes in for assembly).
import FuzzSupport
import NIOCore
import P2P

struct Outcome: Equatable, CustomStringConvertible {
    var frames: [Frame] = []
    var error: PacketError? = nil
    var unprocessed = 0

    var description: String {
        "\(frames.count) frames \(frames.map { "\($0.type)/\($0.chunkNumber)/\($0.payload.readableBytes)" }), "
            + "error \(error.map(String.init(describing:)) ?? "none"), \(unprocessed) bytes unprocessed"
    }
}

/// `Frame.read` in a loop over the whole stream: the reference.
func readLoop(_ bytes: [UInt8], maximum: Int) -> Outcome {
    var buffer = ByteBuffer(bytes: bytes)
    var outcome = Outcome()
    while true {
        let before = buffer.readerIndex
        do {
            guard let frame = try Frame.read(from: &buffer, maximumPayloadLength: maximum) else {
                invariant(buffer.readerIndex == before, "read returned nil but consumed bytes")
                outcome.unprocessed = buffer.readableBytes
                return outcome
            }
            let consumed = Array(bytes[before..<buffer.readerIndex])
            invariant(consumed.count == frame.encodedLength, "consumed \(consumed.count) for a frame of \(frame.encodedLength)")
            invariant(frame.payload.readableBytes <= maximum, "payload over the maximum accepted")
            let encoded = Array(frame.encoded().readableBytesView)
            invariant(encoded == consumed, "frame does not re-encode to the bytes it was read from")
            var header = ByteBuffer()
            frame.writeHeader(to: &header)
            invariant(Array(header.readableBytesView) == Array(consumed.prefix(Frame.headerLength)), "header differs")
            outcome.frames.append(frame)
        } catch {
            invariant(buffer.readerIndex == before, "read threw \(error) but consumed bytes")
            outcome.error = error
            outcome.unprocessed = buffer.readableBytes
            return outcome
        }
    }
}

/// The stream decoder fed the given pieces, then end of stream.
func decodeStream(_ pieces: [ArraySlice<UInt8>], maximum: Int) -> Outcome {
    let processor = NIOSingleStepByteToMessageProcessor(FrameDecoder(maximumPayloadLength: maximum))
    var outcome = Outcome()
    do {
        for piece in pieces {
            try processor.process(buffer: ByteBuffer(bytes: piece)) { outcome.frames.append($0) }
        }
        try processor.finishProcessing(seenEOF: true) { outcome.frames.append($0) }
    } catch let error as PacketError {
        outcome.error = error
    } catch {
        fail("stream decoder threw a non-packet error: \(error)")
    }
    outcome.unprocessed = processor.unprocessedBytes
    return outcome
}

/// Rewrites the checksum field of every whole frame in the stream.
func fixChecksums(_ bytes: inout [UInt8]) {
    var offset = 0
    while bytes.count - offset >= Frame.headerLength {
        let length = Int(bigEndian(bytes, at: offset, as: UInt32.self))
        guard length <= bytes.count - offset - Frame.headerLength else { return }
        bytes[offset + 6] = 0
        bytes[offset + 7] = 0
        let end = offset + Frame.headerLength + length
        let checksum = InternetChecksum.checksum(bytes[offset..<end])
        setBigEndian(checksum, in: &bytes, at: offset + 6)
        offset = end
    }
}

func check(_ input: [UInt8]) {
    guard input.count >= 2 else { return }
    let flags = input[0]
    let maximum = flags & 2 != 0 ? Int(input[1]) * 4 : Frame.defaultMaximumPayloadLength
    var stream = Array(input[2...])
    if flags & 1 != 0 { fixChecksums(&stream) }

    let reference = readLoop(stream, maximum: maximum)
    let consumedByFrames = reference.frames.reduce(0) { $0 + $1.encodedLength }
    invariant(consumedByFrames + reference.unprocessed == stream.count, "bytes lost: \(reference)")

    // Frame.parse: exactly one whole frame.
    func parse(_ buffer: ByteBuffer) -> Result<Frame, PacketError> {
        Result { () throws(PacketError) -> Frame in try Frame.parse(buffer, maximumPayloadLength: maximum) }
    }
    let parsed = parse(ByteBuffer(bytes: stream))
    switch parsed {
    case .success(let frame):
        invariant(reference.frames == [frame] && reference.unprocessed == 0, "parse and read disagree: \(reference)")
        invariant(Array(frame.encoded().readableBytesView) == stream, "parsed frame does not re-encode to the input")
        let again = parse(frame.encoded())
        invariant(again == .success(frame), "re-encoded frame does not parse back equal")
    case .failure(.truncatedHeader(let available)):
        invariant(stream.count < Frame.headerLength && available == stream.count, "bad truncatedHeader(\(available))")
    case .failure(.truncatedPayload(let declared, let available)):
        invariant(
            reference.frames.isEmpty && reference.error == nil && available == stream.count - Frame.headerLength
                && declared > available,
            "bad truncatedPayload(\(declared), \(available)): \(reference)"
        )
    case .failure(.trailingBytes(let count)):
        invariant(
            !reference.frames.isEmpty && count == stream.count - reference.frames[0].encodedLength,
            "bad trailingBytes(\(count)): \(reference)"
        )
    case .failure(let error):
        invariant(reference.frames.isEmpty && reference.error == error, "parse threw \(error), read: \(reference)")
    }
    // The reader index is honoured: the same bytes behind a consumed prefix parse the same.
    var shifted = ByteBuffer(bytes: [0xEE, 0xEE, 0xEE] + stream)
    shifted.moveReaderIndex(forwardBy: 3)
    invariant(parse(shifted) == parsed, "parse depends on the reader index")

    // The stream decoder, fed whole and in pieces. It agrees with the read loop, except
    // where the stream ends inside a payload (a whole header, part of what it declares):
    // the decoder has taken those bytes in to assemble the frame, and says at the end of
    // the stream that it was cut short.
    var expected = reference
    if reference.error == nil && reference.unprocessed >= Frame.headerLength {
        let start = stream.count - reference.unprocessed
        expected.error = .truncatedPayload(
            declared: Int(bigEndian(stream, at: start, as: UInt32.self)),
            available: reference.unprocessed - Frame.headerLength
        )
        expected.unprocessed = 0
    }
    let whole = decodeStream([stream[...]], maximum: maximum)
    invariant(whole == expected, "stream decoder (whole) \(whole) vs read loop \(reference)")
    var pieces: [ArraySlice<UInt8>] = []
    if flags & 4 != 0 {
        pieces = stream.indices.map { stream[$0..<$0 + 1] }
    } else {
        var random = SplitMix64(seed: fnv1a(input))
        var offset = 0
        let longest = max(1, stream.count / 3)
        while offset < stream.count {
            let length = min(stream.count - offset, Int.random(in: 0...longest, using: &random))
            pieces.append(stream[offset..<offset + length])
            offset += length
        }
    }
    var split = decodeStream(pieces, maximum: maximum)
    if reference.error != nil {
        // Feeding stops at the error, so the pieces after it were never handed over.
        split.unprocessed = reference.unprocessed
    }
    invariant(split == expected, "stream decoder (\(pieces.count) pieces) \(split) vs read loop \(reference)")
}

/// The seed corpus (`scripts/fuzz.sh --write-seeds`).
func seeds() -> [(name: String, bytes: [UInt8])] {
    do {
        var seeds: [(name: String, bytes: [UInt8])] = []
        func encoded(_ message: TransferMessage) -> [UInt8] { Array(message.frame().encoded().readableBytesView) }
        // One valid frame of each message kind.
        for (name, message) in Samples.messages {
            seeds.append(("frame-\(name)", [0, 0] + encoded(message)))
        }
        let all = Samples.messages.flatMap { encoded($0.message) }
        seeds.append(("stream-all", [0, 0] + all))
        seeds.append(("stream-all-bytewise", [4, 0] + all))
        seeds.append(("stream-all-fix-checksums", [1, 0] + all))
        // A stream whose last frame is cut short.
        seeds.append(("stream-truncated", [0, 0] + all.dropLast(3)))
        // A small maximum: the chunk-data frame is too large for it.
        seeds.append(("too-large-small-limit", [2, 3] + encoded(Samples.messages[8].message)))
        // Malformed frames.
        var badChecksum = encoded(Samples.messages[4].message)
        badChecksum[7] ^= 0x01
        seeds.append(("bad-checksum", [0, 0] + badChecksum))
        var unknownType = encoded(.inventoryRequest)
        unknownType[5] = 0x42
        seeds.append(("unknown-type", [1, 0] + unknownType))
        var badVersion = encoded(.inventoryRequest)
        badVersion[4] = 2
        seeds.append(("bad-version", [1, 0] + badVersion))
        seeds.append(("huge-length", [0, 0, 0xFF, 0xFF, 0xFF, 0xF0, 1, 7, 0, 0, 0, 0, 0, 1]))
        seeds.append(("header-only-prefix", [0, 0, 0, 0, 0, 0, 1]))
        seeds.append(("trailing-bytes", [0, 0] + encoded(.inventoryRequest) + [1, 2, 3]))
        return seeds
    }
}

runFuzzer(seeds: seeds) { data, size in
    check(inputBytes(data, size))
    return 0
}
