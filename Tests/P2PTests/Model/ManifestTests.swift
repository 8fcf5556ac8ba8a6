import Crypto
import NIOCore
import P2P
import Testing

@Suite("Manifest and chunk sizing")
struct ManifestTests {
    static func manifest(size: Int, seed: UInt8 = 1) throws -> (Manifest, [UInt8]) {
        let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
        let chunkSize = ChunkSizing.chunkSize(forFileSize: UInt64(size))
        var hashes: [UInt8] = []
        if size == 0 {
            hashes = Array(SHA256.hash(data: [UInt8]()))
        } else {
            for start in stride(from: 0, to: size, by: chunkSize) {
                hashes += SHA256.hash(data: data[start..<min(start + chunkSize, size)])
            }
        }
        return (
            try Manifest(name: FileName("file.bin"), size: UInt64(size), chunkSize: chunkSize, chunkHashes: hashes),
            data
        )
    }

    @Test("chunk size: 256 KiB up to 16 GiB, doubling so no file has more than 65,536 chunks")
    func chunkSizes() {
        #expect(ChunkSizing.chunkSize(forFileSize: 0) == 256 * 1024)
        #expect(ChunkSizing.chunkSize(forFileSize: 1) == 256 * 1024)
        #expect(ChunkSizing.chunkSize(forFileSize: 16 << 30) == 256 * 1024)
        #expect(ChunkSizing.chunkSize(forFileSize: (16 << 30) + 1) == 512 * 1024)
        #expect(ChunkSizing.chunkSize(forFileSize: 100 << 30) == 2 << 20)
        let huge = ChunkSizing.chunkSize(forFileSize: 100 << 30)
        #expect(ChunkSizing.chunkCount(fileSize: 100 << 30, chunkSize: huge) <= ChunkSizing.maximumChunkCount)
        #expect(ChunkSizing.chunkCount(fileSize: 0, chunkSize: 1024) == 1)
        #expect(ChunkSizing.chunkCount(fileSize: 1024, chunkSize: 1024) == 1)
        #expect(ChunkSizing.chunkCount(fileSize: 1025, chunkSize: 1024) == 2)
    }

    @Test("encode, decode, id", arguments: [0, 1, 256 * 1024, 256 * 1024 + 1, 1_000_000])
    func roundTrip(size: Int) throws {
        let (manifest, data) = try Self.manifest(size: size)
        let decoded = try Manifest.decode(manifest.encoded, expectedID: manifest.id)
        #expect(decoded == manifest)
        #expect(manifest.id == FileID(hashing: manifest.encoded))
        var covered = 0
        for index in 0..<manifest.chunkCount {
            let range = manifest.range(ofChunk: index)
            covered += range.count
            let chunk = ByteBuffer(bytes: data[Int(range.lowerBound)..<Int(range.upperBound)])
            #expect(manifest.verify(chunk, chunk: index))
        }
        #expect(covered == size)
    }

    @Test("verify refuses wrong bytes, wrong length, wrong index")
    func verifyRefuses() throws {
        let (manifest, data) = try Self.manifest(size: 300_000)
        var chunk = ByteBuffer(bytes: data[0..<manifest.chunkSize])
        #expect(manifest.verify(chunk, chunk: 0))
        #expect(!manifest.verify(chunk, chunk: 1))
        #expect(!manifest.verify(chunk, chunk: -1))
        #expect(!manifest.verify(chunk, chunk: 2))
        chunk.setInteger(UInt8(0xFF) ^ chunk.getInteger(at: 100)!, at: 100)
        #expect(!manifest.verify(chunk, chunk: 0))
        #expect(!manifest.verify(ByteBuffer(bytes: data[0..<100]), chunk: 0))
    }

    @Test("a manifest that does not hash to the id asked for is refused")
    func wrongID() throws {
        let (manifest, _) = try Self.manifest(size: 1000)
        let (other, _) = try Self.manifest(size: 1000, seed: 2)
        #expect(throws: P2PError.self) { try Manifest.decode(manifest.encoded, expectedID: other.id) }
    }

    @Test("malformed manifests are refused, never trap")
    func malformed() throws {
        let (manifest, _) = try Self.manifest(size: 600_000)
        let bytes = manifest.encoded
        for length in 0..<bytes.count - 1 {
            #expect(throws: P2PError.self) { try Manifest.decode(Array(bytes[0..<length])) }
        }
        #expect(throws: P2PError.self) { try Manifest.decode(bytes + [0]) }
        var badName = bytes
        badName[8] = UInt8(ascii: "/")
        #expect(throws: P2PError.self) { try Manifest.decode(badName) }
        var badMagic = bytes
        badMagic[0] = 0
        #expect(throws: P2PError.self) { try Manifest.decode(badMagic) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let junk = (0..<Int.random(in: 0..<200, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            _ = try? Manifest.decode(junk)
        }
    }

    @Test("FileID hex round trip")
    func fileIDHex() throws {
        let (manifest, _) = try Self.manifest(size: 10)
        #expect(FileID(hex: manifest.id.description) == manifest.id)
        #expect(FileID(hex: manifest.id.description.uppercased()) == manifest.id)
        #expect(FileID(hex: "zz") == nil)
        #expect(FileID(hex: String(repeating: "g", count: 64)) == nil)
        #expect(manifest.id.short.count == 12)
    }
}
