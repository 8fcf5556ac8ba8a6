// Fuzzes `CollectionManifest.decode(_:expectedID:)`, the parser of a folder's manifest
// (hostile input: it names the paths a download writes to).
//
// Input: [mode] [collection manifest bytes ...]
//   mode bit 0: also decode with expectedID = SHA-256 of the bytes (must agree with no id)
//   mode bit 1: also decode with a wrong expectedID (must fail as `corrupt`)
//
// Invariants: a collection manifest that decodes
//   - re-encodes to exactly the input bytes, and its id is SHA-256 of them;
//   - rebuilt from its entries, gives an equal manifest;
//   - has at most `maximumEntryCount` entries, every path valid (each component a valid
//     file name, none absolute, none with `..`), no path twice, no path both a file and a
//     folder, every listed folder empty, in strictly increasing order.
// A refused one fails with `protocolViolation`, `badName` or (wrong id) `corrupt`.
import Crypto
import FuzzSupport
import NIOCore
import P2P

func decode(_ bytes: [UInt8], expectedID: FileID? = nil) -> Result<CollectionManifest, P2PError> {
    Result { () throws(P2PError) -> CollectionManifest in try CollectionManifest.decode(bytes, expectedID: expectedID) }
}

func check(_ input: [UInt8]) {
    guard let mode = input.first else { return }
    let bytes = Array(input.dropFirst())
    let digest = Array(SHA256.hash(data: bytes))
    let result = decode(bytes)

    if mode & 1 != 0 {
        invariant(
            decode(bytes, expectedID: FileID(bytes: digest)!) == result,
            "expectedID = SHA-256 changed the result"
        )
    }
    if mode & 2 != 0 {
        var wrong = digest
        wrong[0] ^= 0x01
        switch decode(bytes, expectedID: FileID(bytes: wrong)!) {
        case .success: fail("a collection manifest was accepted under a wrong id")
        case .failure(let error):
            invariant(error.code == .corrupt || error.code == .protocolViolation, "wrong id refused as \(error.code)")
        }
    }

    let manifest: CollectionManifest
    switch result {
    case .failure(let error):
        invariant(error.code == .protocolViolation || error.code == .badName, "refused with \(error.code): \(error)")
        return
    case .success(let decoded):
        manifest = decoded
    }
    invariant(manifest.encoded == bytes, "decoded collection manifest does not re-encode to its bytes")
    invariant(manifest.id.bytes == digest, "id is not SHA-256 of the bytes")
    do {
        let rebuilt = try CollectionManifest(
            name: manifest.name,
            files: manifest.files,
            emptyFolders: manifest.emptyFolders
        )
        invariant(rebuilt == manifest, "rebuilding from the entries gives another manifest")
    } catch {
        fail("the entries of a decoded collection manifest are refused: \(error)")
    }
    let paths = manifest.files.map(\.path) + manifest.emptyFolders
    invariant(paths.count <= CollectionManifest.maximumEntryCount, "\(paths.count) entries")
    invariant(Set(paths).count == paths.count, "a path listed twice")
    invariant(zip(manifest.files, manifest.files.dropFirst()).allSatisfy { $0.path < $1.path }, "files out of order")
    invariant(
        zip(manifest.emptyFolders, manifest.emptyFolders.dropFirst()).allSatisfy { $0 < $1 },
        "folders out of order"
    )
    let all = Set(paths.map(\.value))
    let files = Set(manifest.files.map(\.path.value))
    let folders = Set(manifest.emptyFolders.map(\.value))
    for path in paths {
        invariant(path.value.utf8.count <= CollectionPath.maximumLength, "path too long")
        invariant(!path.value.hasPrefix("/") && !path.value.utf8.contains(0), "absolute path or NUL accepted")
        for component in path.components {
            invariant(FileName.problem(with: component.value) == nil, "unsafe component accepted")
        }
        for ancestor in path.ancestors {
            invariant(!files.contains(ancestor), "'\(ancestor)' is both a file and a folder")
            invariant(!folders.contains(ancestor), "folder '\(ancestor)' listed empty holds '\(path)'")
        }
    }
    invariant(all.count == paths.count, "a path is both a file and a folder")
}

/// The seed corpus (`scripts/fuzz.sh --write-seeds`).
func seeds() -> [(name: String, bytes: [UInt8])] {
    var seeds: [(name: String, bytes: [UInt8])] = []
    for (index, collection) in Samples.collections.enumerated() {
        seeds.append(("collection-\(index)", [UInt8(index % 4)] + collection.encoded))
    }
    let good = Samples.collections[2].encoded
    seeds.append(("truncated", [3] + good.dropLast(1)))
    seeds.append(("trailing", [0] + good + [0]))
    var dotDot = Samples.collections[1].encoded
    // The one path, "a.txt", starts after the header, the name and the counts.
    let pathStart = 8 + Int(dotDot[6]) << 8 + Int(dotDot[7]) + 8 + 2
    dotDot.replaceSubrange(pathStart..<pathStart + 5, with: Array("../ab".utf8))
    seeds.append(("dot-dot", [0] + dotDot))
    var absolute = Samples.collections[1].encoded
    absolute.replaceSubrange(pathStart..<pathStart + 5, with: Array("/etcx".utf8))
    seeds.append(("absolute", [0] + absolute))
    var nul = Samples.collections[1].encoded
    nul[pathStart + 1] = 0
    seeds.append(("nul", [0] + nul))
    var hugeCount = Samples.collections[0].encoded
    hugeCount.replaceSubrange(hugeCount.count - 8..<hugeCount.count - 4, with: [0xFF, 0xFF, 0xFF, 0xFF])
    seeds.append(("huge-count", [0] + hugeCount))
    return seeds
}

runFuzzer(seeds: seeds) { data, size in
    check(inputBytes(data, size))
    return 0
}
