import Foundation
import Testing

@testable import P2P

/// The read-back's direct reads: the fingerprint of what is on the device, nothing for a
/// file cut short, and a refusal (so the caller reads buffered) for an offset off a block.
@Suite(
    "DirectReadBack",
    .enabled(
        if: DirectWriteSupport.available,
        "the temporary folder's file system takes no direct I/O (the read-back reads buffered there)"
    ),
    .timeLimit(.minutes(1))
)
struct DirectReadBackTests {
    @Test("a chunk's fingerprint read directly matches the bytes written, a short last chunk included")
    func fingerprints() async throws {
        var generator = SeededGenerator(seed: 42)
        let bytes = generator.bytes(3 * 65_536 + 1000)
        let (folder, path) = try DirectChunkWriterTests.file(size: 0)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(bytes).write(to: folder.appendingPathComponent("data"))
        guard let reader = DirectReadBack(path, chunkSize: 65_536) else {
            Issue.record("no direct reads where direct writes work")
            return
        }
        for (chunk, range) in [(0, 0..<65_536), (1, 65_536..<131_072), (3, 196_608..<bytes.count)] {
            let expected = bytes[range].withUnsafeBytes { InternetChecksum.wordSum($0) }
            let sum = try await reader.fingerprints(of: [range.count], at: Int64(range.lowerBound))[0]
            #expect(sum == expected, "chunk \(chunk)")
        }
    }

    @Test("several chunks read at once: each its own fingerprint, none for a chunk past the end, too many refused")
    func severalAtOnce() async throws {
        var generator = SeededGenerator(seed: 43)
        let bytes = generator.bytes(3 * 65_536 + 1000)
        let (folder, path) = try DirectChunkWriterTests.file(size: 0)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(bytes).write(to: folder.appendingPathComponent("data"))
        guard let reader = DirectReadBack(path, chunkSize: 65_536) else {
            Issue.record("no direct reads where direct writes work")
            return
        }
        let sum = { (range: Range<Int>) in bytes[range].withUnsafeBytes { InternetChecksum.wordSum($0) } }
        let whole = try await reader.fingerprints(of: [65_536, 65_536, 65_536, 1000], at: 0)
        #expect(whole == [sum(0..<65_536), sum(65_536..<131_072), sum(131_072..<196_608), sum(196_608..<bytes.count)])
        // Past the end of the file: the last (short) chunk is there, a full one is not.
        let tail = try await reader.fingerprints(of: [65_536, 65_536], at: 131_072)
        #expect(tail == [sum(131_072..<196_608), nil])
        await #expect(throws: DirectReadBack.Refused.self) {
            _ = try await reader.fingerprints(of: [reader.capacity, 4096], at: 0)
        }
    }

    @Test("a chunk the file is too short for has no fingerprint; an offset off a block boundary is refused")
    func shortFileAndUnalignedOffset() async throws {
        let (folder, path) = try DirectChunkWriterTests.file(size: 70_000)
        defer { try? FileManager.default.removeItem(at: folder) }
        guard let reader = DirectReadBack(path, chunkSize: 65_536) else {
            Issue.record("no direct reads where direct writes work")
            return
        }
        #expect(try await reader.fingerprints(of: [65_536], at: 65_536) == [nil])
        await #expect(throws: DirectReadBack.Refused.self) {
            _ = try await reader.fingerprints(of: [4096], at: 100)
        }
    }
}
