import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import _NIOFileSystem

@testable import P2P

/// Whether the temporary folder takes a direct write at all: not every file system does
/// (tmpfs before Linux 6.6, some overlay and FUSE ones), and there downloads fall back to
/// buffered writes.
enum DirectWriteSupport {
    static let available: Bool = {
        guard let (folder, path) = try? DirectChunkWriterTests.file(size: 0) else { return false }
        defer { try? FileManager.default.removeItem(at: folder) }
        return DirectChunkWriter.open(path) != nil
    }()
}

@Suite(
    "DirectChunkWriter",
    .enabled(
        if: DirectWriteSupport.available,
        "the temporary folder's file system takes no direct writes (downloads fall back to buffered ones there)"
    ),
    // A lane that never runs would hang a test, not fail it.
    .timeLimit(.minutes(1))
)
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

    /// `bytes` placed as the frame decoder places a chunk: on a boundary, behind a file id.
    static func placed(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = ChunkBufferAllocator.buffer(exactCapacity: FileID.byteCount + bytes.count)
        buffer.writeBytes([UInt8](repeating: 0xAA, count: FileID.byteCount))
        buffer.writeBytes(bytes)
        buffer.moveReaderIndex(forwardBy: FileID.byteCount)
        return buffer
    }

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

    @Test("many unplaced chunks written at once, each through an aligned copy, land where they belong")
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

    /// Holds a pool's only thread until `release` is signalled.
    static func heldPool() -> (pool: NIOThreadPool, release: DispatchSemaphore) {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let release = DispatchSemaphore(value: 0)
        pool.submit { _ in release.wait() }
        return (pool, release)
    }

    /// Starts a write of `bytes` at `offset` and returns once it has queued (bounded:
    /// 500 × 10 ms), so that writes queue in the order they are started.
    static func queue(
        _ bytes: [UInt8],
        at offset: Int,
        on writer: DirectChunkWriter
    ) async throws -> Task<Bool, any Error> {
        let before = writer.pendingCount
        let task = Task { try await writer.write(Self.placed(bytes), at: Int64(offset)) }
        for _ in 0..<500 where writer.pendingCount == before { try await Task.sleep(for: .milliseconds(10)) }
        #expect(writer.pendingCount == before + 1)
        return task
    }

    /// Writes `chunks` (queued in that order) through a writer whose only pool thread is
    /// held until every write has queued, so that the lane finds them all waiting, and
    /// through `vectorWrite`: what each chunk's writer got, the writer, and the file after.
    static func writeHeld(
        _ chunks: [(offset: Int, bytes: [UInt8])],
        vectorWrite: @escaping DirectChunkWriter.VectorWrite = DirectChunkWriter.systemWrite
    ) async throws -> (outcomes: [Result<Bool, any Error>], writer: DirectChunkWriter, file: Data) {
        let (folder, path) = try Self.file(size: 0)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (pool, release) = Self.heldPool()
        let writer = try #require(DirectChunkWriter.open(path, threadPool: pool, vectorWrite: vectorWrite))
        var tasks: [Task<Bool, any Error>] = []
        for chunk in chunks { tasks.append(try await Self.queue(chunk.bytes, at: chunk.offset, on: writer)) }
        release.signal()
        var outcomes: [Result<Bool, any Error>] = []
        for task in tasks { outcomes.append(await task.result) }
        try await pool.shutdownGracefully()
        return (outcomes, writer, try Data(contentsOf: URL(fileURLWithPath: path.string)))
    }

    /// Writes chunks at `slots` (in `chunkSize` units, queued in that order), all at once
    /// (`writeHeld`); returns the writer's statistics once the file holds them.
    static func writeQueued(
        _ slots: [Int],
        chunkSize: Int
    ) async throws -> (statistics: DirectChunkWriter.Statistics, file: Data, chunks: [Int: [UInt8]]) {
        let chunks = Dictionary(
            uniqueKeysWithValues: slots.map { ($0, StorageFixture.bytes(chunkSize, seed: UInt64($0) + 40)) }
        )
        let (outcomes, writer, file) = try await Self.writeHeld(slots.map { ($0 * chunkSize, chunks[$0]!) })
        for outcome in outcomes { #expect(try outcome.get()) }
        return (writer.currentStatistics, file, chunks)
    }

    /// A device that answers each write from a script (then takes whole writes), and
    /// records the offset and length of each write it is asked for.
    final class ScriptedDevice: Sendable {
        let answers: Mutex<[(result: Int, errno: Int32)]>
        let calls = Mutex<[(offset: Int, length: Int)]>([])

        init(_ answers: [(result: Int, errno: Int32)]) { self.answers = Mutex(answers) }

        var write: DirectChunkWriter.VectorWrite {
            { _, segments, offset in
                let length = segments.reduce(0) { $0 + Int($1.iov_len) }
                self.calls.withLock { $0.append((Int(offset), length)) }
                return self.answers.withLock { $0.isEmpty ? (length, 0) : $0.removeFirst() }
            }
        }
    }

    /// Three adjacent 8 KiB chunks, queued together so that they go as one batch, through a
    /// device answering `answers`: what each chunk's writer got, what the device was asked.
    static func writeThrough(
        _ answers: [(result: Int, errno: Int32)]
    ) async throws -> (
        outcomes: [Result<Bool, any Error>], calls: [(offset: Int, length: Int)], writer: DirectChunkWriter
    ) {
        let device = ScriptedDevice(answers)
        let chunks = (0..<3).map { (offset: $0 * 8192, bytes: StorageFixture.bytes(8192, seed: UInt64($0))) }
        let (outcomes, writer, _) = try await Self.writeHeld(chunks, vectorWrite: device.write)
        return (outcomes, device.calls.withLock { $0 }, writer)
    }

    static func succeeded(_ outcome: Result<Bool, any Error>) -> Bool? { try? outcome.get() }

    static func failed(_ outcome: Result<Bool, any Error>, with code: Errno) -> Bool {
        if case .failure(let error as Errno) = outcome { return error == code }
        return false
    }

    @Test("an interrupted write is repeated; a write cut short on a block boundary goes on from there")
    func interruptedAndShortWritesGoOn() async throws {
        let interrupted = try await Self.writeThrough([(-1, EINTR)])
        #expect(interrupted.outcomes.map(Self.succeeded) == [true, true, true])
        #expect(interrupted.calls.map(\.offset) == [0, 0] && interrupted.calls.map(\.length) == [24576, 24576])
        #expect(interrupted.writer.currentStatistics.deviceWrites == 2)

        let short = try await Self.writeThrough([(8192, 0)])
        #expect(short.outcomes.map(Self.succeeded) == [true, true, true])
        #expect(short.calls.map(\.offset) == [0, 8192] && short.calls.map(\.length) == [24576, 16384])
    }

    @Test("a write cut short off a block boundary: the chunks it covered are done, the rest go to the caller")
    func unalignedShortWriteLeavesTheRest() async throws {
        let cut = try await Self.writeThrough([(10000, 0)])
        // Chunk 0 (0..<8192) is on the device; 1 and 2 are written buffered by the caller,
        // over the 1,808 bytes of chunk 1 that went directly, with the same bytes.
        #expect(cut.outcomes.map(Self.succeeded) == [true, false, false])
        #expect(cut.calls.count == 1)
    }

    @Test("a file system that refuses direct writes: every chunk goes to the caller, now and from then on")
    func refusalTurnsDirectWritesOff() async throws {
        let refused = try await Self.writeThrough([(-1, EINVAL)])
        #expect(refused.outcomes.map(Self.succeeded) == [false, false, false])
        #expect(refused.calls.count == 1)
        // Later chunks are not offered to the device at all.
        #expect(try await refused.writer.write(Self.placed(StorageFixture.bytes(8192, seed: 4)), at: 0) == false)
        #expect(refused.writer.currentStatistics.deviceWrites == 1)
    }

    @Test("a device error fails the chunks not yet written, with the device's error; a full device is one")
    func deviceErrorsFailTheRest() async throws {
        let broken = try await Self.writeThrough([(8192, 0), (-1, EIO)])
        #expect(Self.succeeded(broken.outcomes[0]) == true)
        #expect(Self.failed(broken.outcomes[1], with: .ioError) && Self.failed(broken.outcomes[2], with: .ioError))

        // A write that takes nothing, without an error: the device is full.
        let full = try await Self.writeThrough([(0, 0)])
        #expect(full.outcomes.allSatisfy { Self.failed($0, with: .noSpace) })
    }

    @Test("chunks that wait together and lie end to end, before and after the oldest, go to the device as one write")
    func batchesAdjacentChunks() async throws {
        let (statistics, file, chunks) = try await Self.writeQueued([3, 0, 1, 2, 4, 5, 6, 7], chunkSize: 65_536)
        #expect(statistics.deviceWrites == 1 && statistics.chunks == 8 && statistics.alignedCopies == 0)
        #expect(file == Data((0..<8).flatMap { chunks[$0]! }))
    }

    @Test("files sharing the pool take turns: one batch each, not one file's queue until it is empty")
    func filesTakeTurns() async throws {
        let (folderA, pathA) = try Self.file(size: 0)
        let (folderB, pathB) = try Self.file(size: 0)
        defer {
            try? FileManager.default.removeItem(at: folderA)
            try? FileManager.default.removeItem(at: folderB)
        }
        let (pool, release) = Self.heldPool()
        let first = try #require(DirectChunkWriter.open(pathA, threadPool: pool))
        let second = try #require(DirectChunkWriter.open(pathB, threadPool: pool))
        let chunk = StorageFixture.bytes(65_536, seed: 9)
        // The first file's lane is queued before the second's, with two batches waiting
        // (its chunks are not adjacent); the second file's one batch goes between them.
        let a1 = try await Self.queue(chunk, at: 0, on: first)
        let b1 = try await Self.queue(chunk, at: 0, on: second)
        let a2 = try await Self.queue(chunk, at: 2 * 65_536, on: first)
        release.signal()
        for task in [a1, b1, a2] { #expect(try await task.value) }
        let (statisticsA, statisticsB) = (first.currentStatistics, second.currentStatistics)
        #expect(statisticsA.deviceWrites == 2 && statisticsB.deviceWrites == 1)
        let doneA = try #require(statisticsA.lastBatchDone)
        let doneB = try #require(statisticsB.lastBatchDone)
        #expect(doneB < doneA)
        try await pool.shutdownGracefully()
    }

    @Test("a write whose task is cancelled while it waits is taken back; the writer goes on")
    func cancelledWhileQueued() async throws {
        let (folder, path) = try Self.file(size: 0)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (pool, release) = Self.heldPool()
        let writer = try #require(DirectChunkWriter.open(path, threadPool: pool))
        let chunk = StorageFixture.bytes(65_536, seed: 12)
        let cancelled = try await Self.queue(chunk, at: 0, on: writer)
        cancelled.cancel()
        // Bounded: 500 × 10 ms. Released either way, so that a write not taken back ends
        // (and fails the test) rather than waiting forever.
        for _ in 0..<500 where writer.pendingCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(writer.pendingCount == 0)
        release.signal()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        // The lane that was started for it finds nothing and ends; a later write starts
        // another.
        #expect(try await writer.write(Self.placed(chunk), at: 65_536))
        #expect(writer.currentStatistics.chunks == 1)
        let written = try Data(contentsOf: URL(fileURLWithPath: path.string))
        #expect(written.count == 2 * 65_536 && written.prefix(65_536).allSatisfy { $0 == 0 })
        try await pool.shutdownGracefully()
    }

    @Test("chunks with gaps between them are written one by one, each where it belongs")
    func separateChunksStaySeparate() async throws {
        let (statistics, file, chunks) = try await Self.writeQueued([0, 2, 5], chunkSize: 65_536)
        #expect(statistics.deviceWrites == 3 && statistics.chunks == 3)
        #expect(file.count == 6 * 65_536)
        for slot in 0..<6 {
            let part = file[(slot * 65_536)..<((slot + 1) * 65_536)]
            if let chunk = chunks[slot] { #expect(Array(part) == chunk) } else { #expect(part.allSatisfy { $0 == 0 }) }
        }
    }

    @Test("a run longer than one write allows is cut at maximumBatchBytes")
    func batchesAreBounded() async throws {
        let chunkSize = 262_144
        let count = DirectChunkWriter.maximumBatchBytes / chunkSize + 1
        let (statistics, file, chunks) = try await Self.writeQueued(Array(0..<count), chunkSize: chunkSize)
        #expect(statistics.deviceWrites == 2 && statistics.chunks == count)
        #expect(file == Data((0..<count).flatMap { chunks[$0]! }))
    }

    @Test("a write after the thread pool has stopped fails rather than waiting forever")
    func stoppedPoolFails() async throws {
        let (folder, path) = try Self.file(size: 0)
        defer { try? FileManager.default.removeItem(at: folder) }
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        try await pool.shutdownGracefully()
        let writer = try #require(DirectChunkWriter.open(path, threadPool: pool))
        await #expect(throws: NIOThreadPoolError.ThreadPoolInactive.self) {
            try await writer.write(Self.buffer(StorageFixture.bytes(4096, seed: 1)), at: 0)
        }
    }
}

@Suite("ChunkBufferAllocator")
struct ChunkBufferAllocatorTests {
    /// Where byte `offset` of `buffer`'s readable bytes is, modulo the direct-write alignment.
    static func misalignment(of buffer: ByteBuffer, at offset: Int) -> Int {
        buffer.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress! + offset) % DirectChunkWriter.alignment }
    }

    @Test(
        "byte 32 of every buffer, where a chunk starts behind its file id, is on a boundary",
        arguments: [1, 4096, 262_176, 1_048_600]
    )
    func placesChunks(capacity: Int) {
        var buffer = ChunkBufferAllocator.allocator.buffer(capacity: capacity)
        buffer.writeBytes([UInt8](repeating: 9, count: capacity))
        #expect(Self.misalignment(of: buffer, at: FileID.byteCount) == 0)
    }

    @Test("a buffer that grows moves to a new block: still placed, its bytes kept")
    func growsPlaced() {
        var buffer = ChunkBufferAllocator.allocator.buffer(capacity: 100)
        let first = StorageFixture.bytes(100, seed: 1)
        let more = StorageFixture.bytes(300_000, seed: 2)
        buffer.writeBytes(first)
        buffer.writeBytes(more)
        #expect(Self.misalignment(of: buffer, at: FileID.byteCount) == 0)
        #expect(Array(buffer.readableBytesView) == first + more)
    }

    @Test("a chunk frame decoded over many reads has its chunk on a boundary")
    func decodedChunksArePlaced() throws {
        let id = try #require(FileID(bytes: [UInt8](repeating: 4, count: FileID.byteCount)))
        let chunk = ByteBuffer(bytes: StorageFixture.bytes(262_144, seed: 3))
        var stream = TransferMessage.chunkData(id, chunk: 5, bytes: chunk).frame().encoded()
        var decoder = FrameDecoder(largePayloadBuffer: ChunkBufferAllocator.buffer(exactCapacity:))
        var frames: [Frame] = []
        while stream.readableBytes > 0 {
            var read = stream.readSlice(length: min(stream.readableBytes, 50_000))!
            while let frame = try decoder.decode(buffer: &read) { frames.append(frame) }
        }
        let frame = try #require(frames.first)
        #expect(frames.count == 1)
        guard case .chunkData(let file, 5, let bytes) = try TransferMessage(frame: frame) else {
            Issue.record("not the chunk sent")
            return
        }
        #expect(file == id && bytes == chunk)
        #expect(Self.misalignment(of: bytes, at: 0) == 0)
        // Assembled in a block of exactly the payload's size (NIO's own would be 512 KiB).
        #expect(frame.payload.storageCapacity == FileID.byteCount + chunk.readableBytes)
    }

    @Test("an exact buffer has the capacity asked for, its byte 32 placed; grown, it stays placed")
    func exactBuffers() {
        let capacity = FileID.byteCount + 262_144
        var buffer = ChunkBufferAllocator.buffer(exactCapacity: capacity)
        #expect(buffer.capacity == capacity && buffer.readableBytes == 0)
        let bytes = StorageFixture.bytes(capacity, seed: 5)
        buffer.writeBytes(bytes)
        #expect(buffer.capacity == capacity)
        #expect(Self.misalignment(of: buffer, at: FileID.byteCount) == 0)
        buffer.writeBytes([1, 2, 3])
        #expect(buffer.capacity > capacity)
        #expect(Self.misalignment(of: buffer, at: FileID.byteCount) == 0)
        #expect(Array(buffer.readableBytesView) == bytes + [1, 2, 3])
    }

    @Test(
        "DirectChunkWriter writes a placed chunk as it is, and the file holds it",
        .enabled(if: DirectWriteSupport.available, "no direct writes in the temporary folder")
    )
    func writesPlacedChunk() async throws {
        let (folder, path) = try DirectChunkWriterTests.file(size: 0)
        defer { try? FileManager.default.removeItem(at: folder) }
        let writer = try #require(DirectChunkWriter.open(path))
        let chunk = StorageFixture.bytes(262_144, seed: 8)
        var buffer = ChunkBufferAllocator.allocator.buffer(capacity: FileID.byteCount + chunk.count)
        buffer.writeBytes([UInt8](repeating: 0xAA, count: FileID.byteCount))
        buffer.writeBytes(chunk)
        buffer.moveReaderIndex(forwardBy: FileID.byteCount)
        #expect(Self.misalignment(of: buffer, at: 0) == 0)
        #expect(try await writer.write(buffer, at: 0))
        // Written from its own buffer: no aligned copy was needed.
        #expect(writer.currentStatistics.alignedCopies == 0)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path.string))) == chunk)
        // The same bytes elsewhere in memory go through an aligned copy.
        #expect(try await writer.write(ByteBuffer(bytes: [0x55] + chunk), at: 0) == false)
        var unplaced = ByteBuffer(bytes: [0x55] + chunk)
        unplaced.moveReaderIndex(forwardBy: 1)
        #expect(Self.misalignment(of: unplaced, at: 0) != 0)
        #expect(try await writer.write(unplaced, at: 262_144))
        #expect(writer.currentStatistics.alignedCopies == 1)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path.string))) == chunk + chunk)
    }
}
