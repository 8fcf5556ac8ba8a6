// Fuzzes `Manifest.decode(_:expectedID:)`.
//
// Input: [mode] [manifest bytes ...]
//   mode bit 0: also decode with expectedID = SHA-256 of the bytes (must agree with no id)
//   mode bit 1: also decode with a wrong expectedID (must fail as `corrupt` where the
//               bytes are otherwise a good manifest)
//
// Invariants: a manifest that decodes
//   - re-encodes to exactly the input bytes, and its id is SHA-256 of them;
//   - decodes again, from its encoding and with its own id, to an equal manifest;
//   - is consistent: chunk count from size and chunk size, hashes 32 bytes each, chunk
//     ranges contiguous from 0 to size, no chunk longer than the chunk size;
//   - verifies only a chunk with the right length and hash.
// A refused manifest fails with `protocolViolation` or `badName` (never a crash).
import Crypto
import FuzzSupport
import NIOCore
import P2P

func decode(_ bytes: [UInt8], expectedID: FileID? = nil) -> Result<Manifest, P2PError> {
    Result { () throws(P2PError) -> Manifest in try Manifest.decode(bytes, expectedID: expectedID) }
}

func check(_ input: [UInt8]) {
    guard let mode = input.first else { return }
    let bytes = Array(input.dropFirst())
    let digest = Array(SHA256.hash(data: bytes))
    let result = decode(bytes)

    if mode & 1 != 0 {
        invariant(decode(bytes, expectedID: FileID(bytes: digest)!) == result, "expectedID = SHA-256 changed the result")
    }
    if mode & 2 != 0 {
        var wrong = digest
        wrong[0] ^= 0x01
        switch (result, decode(bytes, expectedID: FileID(bytes: wrong)!)) {
        case (.success, .failure(let error)):
            invariant(error.code == .corrupt, "wrong id refused as \(error.code)")
        case (.failure(let plain), .failure(let withID)):
            invariant(plain == withID, "a wrong id changed the error: \(plain) vs \(withID)")
        case (_, .success):
            fail("a manifest was accepted under a wrong id")
        }
    }

    let manifest: Manifest
    switch result {
    case .failure(let error):
        invariant(error.code == .protocolViolation || error.code == .badName, "refused with \(error.code): \(error)")
        return
    case .success(let decoded):
        manifest = decoded
    }

    invariant(manifest.encoded == bytes, "decoded manifest does not re-encode to its bytes")
    invariant(manifest.id.bytes == digest, "id is not SHA-256 of the bytes")
    invariant(decode(manifest.encoded, expectedID: manifest.id) == .success(manifest), "does not decode again")
    do {
        let rebuilt = try Manifest(
            name: manifest.name,
            size: manifest.size,
            chunkSize: manifest.chunkSize,
            chunkHashes: manifest.chunkHashes
        )
        invariant(rebuilt == manifest, "rebuilding from the fields gives another manifest")
    } catch {
        fail("the fields of a decoded manifest are refused: \(error)")
    }

    let count = manifest.chunkCount
    invariant(manifest.chunkHashes.count == count * 32, "hash bytes \(manifest.chunkHashes.count) for \(count) chunks")
    invariant(manifest.chunkSize > 0 && manifest.chunkSize <= ChunkSizing.maximumChunkSize, "chunk size")
    invariant(count == ChunkSizing.chunkCount(fileSize: manifest.size, chunkSize: manifest.chunkSize), "chunk count")
    invariant(FileName.problem(with: manifest.name.value) == nil, "unsafe name accepted")
    var expectedStart: Int64 = 0
    for index in 0..<count {
        let range = manifest.range(ofChunk: index)
        invariant(range.lowerBound == expectedStart, "chunk \(index) starts at \(range.lowerBound)")
        let length = manifest.length(ofChunk: index)
        invariant(length == range.count && length <= manifest.chunkSize, "chunk \(index) length \(length)")
        invariant(length > 0 || manifest.size == 0, "empty chunk \(index) in a non-empty file")
        expectedStart = range.upperBound
    }
    invariant(expectedStart == Int64(manifest.size), "chunks cover \(expectedStart) of \(manifest.size) bytes")

    // verify: a chunk of the right length whose hash is listed verifies; anything else not.
    var random = SplitMix64(seed: fnv1a(input))
    let index = Int.random(in: -1...count, using: &random)
    let length = index >= 0 && index < count ? manifest.length(ofChunk: index) : Int.random(in: 0...64, using: &random)
    let data = ByteBuffer(repeating: UInt8(truncatingIfNeeded: random.next()), count: min(length, 1 << 16))
    let listed =
        index >= 0 && index < count && data.readableBytes == length
        && Array(SHA256.hash(data: Array(data.readableBytesView))) == Array(manifest.chunkHashes[index * 32..<index * 32 + 32])
    invariant(manifest.verify(data, chunk: index) == listed, "verify(chunk \(index)) disagrees")
    invariant(!manifest.verify(data, chunk: count) && !manifest.verify(data, chunk: -1), "verified a chunk out of range")
}

/// The seed corpus (`scripts/fuzz.sh --write-seeds`).
func seeds() -> [(name: String, bytes: [UInt8])] {
    do {
        var seeds: [(name: String, bytes: [UInt8])] = []
        for (index, manifest) in Samples.manifests.enumerated() {
            seeds.append(("manifest-\(index)", [UInt8(index % 4)] + manifest.encoded))
        }
        let good = Samples.manifests[2].encoded
        seeds.append(("truncated", [3] + good.dropLast(1)))
        seeds.append(("extra-hash", [0] + good + [UInt8](repeating: 0, count: 32)))
        var badMagic = good
        badMagic[3] = UInt8(ascii: "X")
        seeds.append(("bad-magic", [0] + badMagic))
        var badName = Samples.manifests[1].encoded
        badName[8] = UInt8(ascii: "/")
        seeds.append(("bad-name", [0] + badName))
        var zeroChunkSize = Samples.manifests[1].encoded
        let sizeOffset = 8 + Int(zeroChunkSize[6]) << 8 + Int(zeroChunkSize[7])
        setBigEndian(UInt32(0), in: &zeroChunkSize, at: sizeOffset + 8)
        seeds.append(("zero-chunk-size", [0] + zeroChunkSize))
        return seeds
    }
}

runFuzzer(seeds: seeds) { data, size in
    check(inputBytes(data, size))
    return 0
}
