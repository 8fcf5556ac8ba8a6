// Fuzzes `ChunkBitmap(bytes:count:)`, the bitmap an inventory carries.
//
// Input: [mode] [8 bytes] [bitmap bytes ...]
//   mode bit 0 == 0: count = the 8 bytes as a signed big-endian integer (anything at all)
//   mode bit 0 == 1: count = bytes * 8 - (first of the 8 bytes % 8), a count that fits
//
// Invariants: the bitmap is accepted exactly when there are ceil(count / 8) bytes and the
// spare bits are zero (computed here without overflow); an accepted bitmap keeps its
// bytes, its set count is the number of bits set, `contains`, `indices` and `missing`
// agree and partition 0..<count, and filling in the missing chunks gives the full bitmap.
import FuzzSupport
import P2P

func check(_ input: [UInt8]) {
    guard input.count >= 9 else { return }
    let bytes = Array(input[9...])
    let count =
        input[0] & 1 == 0
        ? Int(bigEndian(input, at: 1, as: Int64.self))
        : bytes.count * 8 - Int(input[1] % 8)

    let neededBytes = count < 0 ? -1 : count / 8 + (count % 8 == 0 ? 0 : 1)
    var acceptable = neededBytes == bytes.count
    if acceptable, count % 8 != 0, let last = bytes.last {
        let spareBits = 8 - count % 8
        acceptable = last & UInt8((1 << spareBits) - 1) == 0
    }

    guard let bitmap = ChunkBitmap(bytes: bytes, count: count) else {
        invariant(!acceptable, "refused a good bitmap of \(count) chunks in \(bytes.count) bytes")
        return
    }
    invariant(acceptable, "accepted a bad bitmap of \(count) chunks in \(bytes.count) bytes")
    invariant(bitmap.count == count && bitmap.bytes == bytes, "the bitmap changed its input")
    let setBits = bytes.reduce(0) { $0 + $1.nonzeroBitCount }
    invariant(bitmap.setCount == setBits, "setCount \(bitmap.setCount), bits set \(setBits)")
    let indices = bitmap.indices
    let missing = bitmap.missing
    invariant(indices.count == bitmap.setCount, "indices \(indices.count) vs setCount \(bitmap.setCount)")
    invariant(indices.count + missing.count == count, "indices and missing do not cover the chunks")
    invariant((indices + missing).sorted() == Array(0..<count), "indices and missing are not a partition")
    for index in indices { invariant(bitmap.contains(index), "indices lists \(index) that is not held") }
    invariant(!bitmap.contains(-1) && !bitmap.contains(count), "contains out of range")
    invariant(bitmap.isComplete == (missing.isEmpty), "isComplete disagrees with missing")

    var filled = bitmap
    for index in indices { invariant(!filled.insert(index), "insert of a held chunk \(index) returned true") }
    for index in missing { invariant(filled.insert(index), "insert of a missing chunk \(index) returned false") }
    invariant(!filled.insert(count) && !filled.insert(-1), "insert out of range")
    invariant(filled == ChunkBitmap.full(count: count), "filling in the missing chunks is not the full bitmap")
    invariant(ChunkBitmap(bytes: filled.bytes, count: count) == filled, "a full bitmap does not read back")
}

/// The seed corpus (`scripts/fuzz.sh --write-seeds`).
func seeds() -> [(name: String, bytes: [UInt8])] {
    do {
        func withCount(_ count: Int64, _ bytes: [UInt8]) -> [UInt8] {
            var header = [UInt8](repeating: 0, count: 9)
            setBigEndian(count, in: &header, at: 1)
            return header + bytes
        }
        func fitting(drop: UInt8, _ bytes: [UInt8]) -> [UInt8] {
            [1, drop, 0, 0, 0, 0, 0, 0, 0] + bytes
        }
        var seeds: [(name: String, bytes: [UInt8])] = [
            ("empty", withCount(0, [])),
            ("one-held", withCount(1, [0x80])),
            ("one-missing", withCount(1, [0x00])),
            ("twelve", withCount(12, [0xA5, 0x50])),
            ("spare-bit-set", withCount(12, [0xA5, 0x51])),
            ("too-few-bytes", withCount(17, [0xFF, 0xFF])),
            ("negative", withCount(-1, [])),
            ("fitting-full", fitting(drop: 3, [0xFF, 0xFF, 0xF8])),
            ("fitting-sparse", fitting(drop: 0, [0x01, 0x80, 0x00, 0x42])),
        ]
        for (index, entry) in Samples.inventoryEntries.enumerated() {
            seeds.append(("inventory-\(index)", withCount(Int64(entry.bitmap.count), entry.bitmap.bytes)))
        }
        return seeds
    }
}

runFuzzer(seeds: seeds) { data, size in
    check(inputBytes(data, size))
    return 0
}
