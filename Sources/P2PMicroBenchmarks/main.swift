// Micro benchmarks for the per-byte work on the transfer path: the RFC 1071 checksum,
// SHA-256 of chunks, and frame encode + parse. Run in release mode:
//
//     swift run -c release p2p-microbench
//
// Each figure is the median of several runs, in GB/s (10^9 bytes per second), over data
// already in memory.

import Crypto
import NIOCore
import P2P

/// Bytes from a fixed seed (SplitMix64), so every run sums the same data.
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { raw in
        var offset = 0
        while offset < count {
            state &+= 0x9E37_79B9_7F4A_7C15
            var value = state
            value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
            value ^= value >> 31
            for shift in stride(from: 0, to: min(64, (count - offset) * 8), by: 8) {
                raw[offset] = UInt8(truncatingIfNeeded: value >> UInt64(shift))
                offset += 1
            }
        }
    }
    return bytes
}

/// Runs `body` (which processes `bytesPerRun` bytes) `runs` times after one warm-up run and
/// prints the median, fastest and slowest rate.
/// - Returns: the results added up, to be printed so the optimizer cannot drop the work.
@discardableResult
func measure(_ name: String, bytesPerRun: Int, runs: Int, _ body: () -> UInt64) -> UInt64 {
    var sink = body()
    var rates: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<runs {
        var result: UInt64 = 0
        let elapsed = clock.measure { result = body() }
        sink &+= result
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        rates.append(Double(bytesPerRun) / seconds / 1e9)
    }
    rates.sort()
    let median = rates[rates.count / 2]
    print(
        name.padded(to: 52),
        "median",
        format(median),
        "GB/s   (min",
        format(rates.first!) + ", max",
        format(rates.last!) + ")"
    )
    return sink
}

func format(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let text = "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    return String(repeating: " ", count: max(0, 6 - text.count)) + text
}

extension String {
    func padded(to length: Int) -> String {
        self.count >= length ? self : self + String(repeating: " ", count: length - self.count)
    }
}

/// The obvious loop over byte pairs, for comparison: what "a byte loop" reaches.
func byteLoopChecksum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
    var sum: UInt64 = 0
    var index = 0
    while index + 1 < bytes.count {
        sum &+= UInt64(bytes[index]) << 8 | UInt64(bytes[index + 1])
        index += 2
    }
    if index < bytes.count { sum &+= UInt64(bytes[index]) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) &+ (sum >> 16) }
    return ~UInt16(sum)
}

/// Keeps results alive so the optimizer cannot drop the work.
var sink: UInt64 = 0
let mebibyte = 1 << 20
let large = pseudoRandomBytes(64 * mebibyte, seed: 1)
let small = pseudoRandomBytes(mebibyte, seed: 2)
print("p2p micro benchmarks (release build expected; data in memory, warm caches)")

large.withUnsafeBytes { raw in
    sink &+= measure("InternetChecksum, one 64 MiB buffer", bytesPerRun: raw.count, runs: 15) {
        UInt64(InternetChecksum.checksum(raw))
    }
    sink &+= measure("InternetChecksum, 64 MiB at offset 1 (unaligned)", bytesPerRun: raw.count - 1, runs: 15) {
        UInt64(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: raw[1...])))
    }
    sink &+= measure("byte-pair loop checksum (reference), 64 MiB", bytesPerRun: raw.count, runs: 5) {
        UInt64(byteLoopChecksum(raw))
    }
}

small.withUnsafeBytes { raw in
    let repeats = 256
    sink &+= measure("InternetChecksum, 1 MiB buffer x \(repeats)", bytesPerRun: raw.count * repeats, runs: 15) {
        var total: UInt64 = 0
        for _ in 0..<repeats { total &+= UInt64(InternetChecksum.checksum(raw)) }
        return total
    }
}

large.withUnsafeBytes { raw in
    sink &+= measure("SHA-256 (swift-crypto), 64 x 1 MiB chunks", bytesPerRun: raw.count, runs: 5) {
        var total: UInt64 = 0
        for start in stride(from: 0, to: raw.count, by: mebibyte) {
            let digest = SHA256.hash(data: UnsafeRawBufferPointer(rebasing: raw[start..<(start + mebibyte)]))
            total &+= digest.withUnsafeBytes { UInt64($0[0]) }
        }
        return total
    }
}

let payload = ByteBuffer(bytes: small)
let frame = Frame(type: .chunkData, chunkNumber: 7, payload: payload)
let framesPerRun = 64
sink &+= measure("Frame encode + parse, 1 MiB payload x \(framesPerRun)", bytesPerRun: mebibyte * framesPerRun, runs: 9)
{
    var total: UInt64 = 0
    for _ in 0..<framesPerRun {
        let encoded = frame.encoded()
        do {
            let parsed = try Frame.parse(encoded)
            total &+= UInt64(parsed.payload.readableBytes)
        } catch {
            fatalError("benchmark frame did not parse: \(error)")
        }
    }
    return total
}
sink &+= measure(
    "Frame writeHeader + read, 1 MiB payload x \(framesPerRun)",
    bytesPerRun: mebibyte * framesPerRun,
    runs: 9
) {
    // What FrameEncoder and FrameDecoder do: no copy of the payload behind the header.
    var total: UInt64 = 0
    for _ in 0..<framesPerRun {
        var header = ByteBuffer()
        frame.writeHeader(to: &header)
        var stream = header
        stream.writeImmutableBuffer(payload)
        do {
            let parsed = try Frame.read(from: &stream)
            total &+= UInt64(parsed?.payload.readableBytes ?? 0)
        } catch {
            fatalError("benchmark frame did not parse: \(error)")
        }
    }
    return total
}

print("(sink \(sink % 10))")
