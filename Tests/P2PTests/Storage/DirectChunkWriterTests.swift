import Foundation
import NIOCore
import Testing
import _NIOFileSystem

@testable import P2P

@Suite("DirectChunkWriter")
struct DirectChunkWriterTests {
    /// A file of `size` zero bytes in a fresh temporary folder, removed by the caller.
    static func file(size: Int) throws -> (folder: URL, path: FilePath) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("p2p-direct-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("data")
        try Data(count: size).write(to: url)
        return (folder, FilePath(url.path))
    }

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    @Test("the descriptor really is opened for direct I/O (O_DIRECT's value on this architecture)")
    func opensDirect() throws {
        let (folder, path) = try Self.file(size: 0)
        defer { try? FileManager.default.removeItem(at: folder) }
        let writer = try #require(DirectChunkWriter.open(path))
        // /proc/self/fdinfo lists the open flags in octal; O_DIRECT is 040000 on x86-64
        // and 0200000 on arm64.
        let info = try String(contentsOfFile: "/proc/self/fdinfo/\(writer.descriptor.rawValue)", encoding: .utf8)
        let flagsLine = try #require(info.split(separator: "\n").first { $0.hasPrefix("flags:") })
        let flags = try #require(Int(flagsLine.split(separator: "\t").last ?? "", radix: 8))
        #if arch(x86_64)
        #expect(flags & 0o40000 != 0)
        #else
        #expect(flags & 0o200000 != 0)
        #endif
    }

    @Test("whole blocks are written; a short or unaligned chunk is left to the caller, untouched")
    func writesWholeBlocksOnly() async throws {
        let (folder, path) = try Self.file(size: 0)
        defer { try? FileManager.default.removeItem(at: folder) }
        let writer = try #require(DirectChunkWriter.open(path))
        let chunk = StorageFixture.bytes(262_144, seed: 3)
        #expect(try await writer.write(Self.buffer(chunk), at: 262_144))
        #expect(try await !writer.write(Self.buffer([1, 2, 3]), at: 0))
        #expect(try await !writer.write(Self.buffer(chunk), at: 100))
        #expect(try await !writer.write(ByteBuffer(), at: 0))
        let written = try Data(contentsOf: URL(fileURLWithPath: path.string))
        // The file grew to the end of the one chunk written; the gap before it is a hole.
        #expect(written.count == 2 * 262_144)
        #expect(written.prefix(262_144).allSatisfy { $0 == 0 })
        #expect(Array(written.suffix(262_144)) == chunk)
    }

    @Test("a buffered reader sees a direct write, even of a range it had read (and cached) before")
    func coherentWithBufferedReads() async throws {
        let size = 4 * 262_144
        let (folder, path) = try Self.file(size: size)
        defer { try? FileManager.default.removeItem(at: folder) }
        let reader = try await FileSystem.shared.openFile(forReadingAt: path, options: .init())
        let before = try await reader.readChunk(fromAbsoluteOffset: 262_144, length: .bytes(262_144))
        #expect(before.readableBytesView.allSatisfy { $0 == 0 })

        let writer = try #require(DirectChunkWriter.open(path))
        let chunk = StorageFixture.bytes(262_144, seed: 5)
        #expect(try await writer.write(Self.buffer(chunk), at: 262_144))
        let after = try await reader.readChunk(fromAbsoluteOffset: 262_144, length: .bytes(262_144))
        #expect(Array(after.readableBytesView) == chunk)
        try await reader.close()
    }

    @Test("many chunks written at once, sharing the writer's aligned buffers, each land where they belong")
    func concurrentWrites() async throws {
        let count = 24
        let (folder, path) = try Self.file(size: 0)
        defer { try? FileManager.default.removeItem(at: folder) }
        let writer = try #require(DirectChunkWriter.open(path))
        let chunks = (0..<count).map { StorageFixture.bytes(65_536, seed: UInt64($0) + 11) }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for (index, chunk) in chunks.enumerated() {
                group.addTask { try await writer.write(Self.buffer(chunk), at: Int64(index) * 65_536) }
            }
            for try await written in group { #expect(written) }
        }
        let written = try Data(contentsOf: URL(fileURLWithPath: path.string))
        #expect(written == Data(chunks.joined()))
    }
}
