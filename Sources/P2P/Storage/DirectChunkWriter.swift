import NIOCore
import NIOPosix
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a download's chunks around the page cache (`O_DIRECT`), straight from the chunk's
/// buffer to the device when it arrived placed on a boundary (`ChunkBufferAllocator`), from
/// an aligned copy otherwise; chunks that wait for the device together and lie end to end
/// go to it as one write.
///
/// Why direct: a buffered write makes the kernel copy every downloaded byte into page-cache
/// pages it must first find, and keeps them dirty until writeback, though a download is
/// written once and read back rarely. On a host that gives freed memory back to its
/// hypervisor (free page reporting), each of those pages is also a fresh fault: buffered
/// writes are the largest single cost of a 16-peer swarm on 2 cores (docs/benchmark-log.md).
/// Written directly, a chunk costs the kernel no copy at all, and the device does the rest.
///
/// Why batches: a device takes a few large writes faster than many small ones (this VM's
/// disk: 1 GiB in 256 KiB direct writes in 0.95–1.06 s, in 1 MiB ones 0.62–0.77 s), and one
/// limited in writes per second (a cloud volume, a throttled cgroup) takes no more chunks a
/// second than it takes writes. The writes block a thread of their own pool while the
/// device works, one at a time per file; what arrives meanwhile queues, and the next write
/// takes the oldest queued chunk with every queued chunk that continues it on either side
/// (`pwritev`, one request). Chunks that are not adjacent (most of a swarm's) are written
/// one by one. While another file's lane waits for a thread, a lane gives up its thread
/// after each batch, so that files sharing the pool take turns.
///
/// Only whole blocks can be written this way: a chunk whose offset or length is not a
/// multiple of `alignment` (a file's short last chunk) is left to the caller's buffered
/// handle, as is every chunk once the file system has refused a direct write. Reads keep
/// using the buffered handle; Linux keeps the two coherent (a direct write drops any cached
/// pages of its range).
final class DirectChunkWriter: Sendable {
    /// Offsets, lengths and buffer addresses must be multiples of this: the logical block
    /// size of common devices, or a multiple of it.
    static let alignment = 4096
    /// Writes in progress at once, per file: one. ext4 holds the file's inode lock through
    /// a direct write that fills a hole, so a second write to the same file would wait
    /// anyway; with one lane the chunks queue behind it and go out as larger writes. On a
    /// device limited to 1,000 writes a second (a cgroup throttle here), 1 GiB took 3.1 s
    /// with one lane, 3.6–3.8 s with two, 4.3 s written chunk by chunk.
    static let lanes = 1
    /// Threads in `threadPool`: files on different devices, or on file systems that write
    /// directly in parallel, need not wait for each other.
    static let poolThreads = 2
    /// The most bytes one write takes: 16 chunks of 256 KiB. A larger request gains nothing
    /// more here and holds more chunks' memory until it is done.
    static let maximumBatchBytes = 4 << 20

    /// The threads that wait for the device, shared by every file's writer and used for
    /// nothing else: a direct write holds its thread for the device's whole latency, and on
    /// NIO's shared pool that held up the work queued behind it (the record appends that
    /// follow each chunk, the file reads that serve other peers). Started on first use and
    /// never shut down: its threads wait, idle, for the process's life.
    static let threadPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: DirectChunkWriter.poolThreads)
        pool.start()
        return pool
    }()

    let descriptor: SystemPackage.FileDescriptor
    private let threadPool: NIOThreadPool
    private let queue = Mutex(Queue())
    /// Set once the file system refuses a direct write: every later chunk goes buffered.
    private let refused = Atomic<Bool>(false)
    private let statistics = Mutex(Statistics())

    /// Chunks waiting for a lane, and how many lanes are writing.
    private struct Queue {
        var pending: [PendingWrite] = []
        var activeLanes = 0
        var nextID: UInt64 = 0
    }

    /// What the writer has done, for tests.
    struct Statistics {
        /// Calls of `pwritev`: one per batch, more if one was cut short or interrupted.
        var deviceWrites = 0
        /// Chunks handed to the device, whatever came of them.
        var chunks = 0
        /// Chunks that had to be copied into aligned memory first.
        var alignedCopies = 0
        /// When the last batch was done with.
        var lastBatchDone: ContinuousClock.Instant? = nil
    }

    /// One vectored write at an offset: the system call's result and, when it is negative,
    /// `errno` as read right after it.
    typealias VectorWrite =
        @Sendable (
            _ descriptor: Int32, _ segments: UnsafeBufferPointer<iovec>, _ offset: off_t
        ) -> (result: Int, errno: Int32)

    /// `pwritev`, with `errno` read at once: releasing the segments afterwards may call
    /// `free`, which may set it.
    static let systemWrite: VectorWrite = { descriptor, segments, offset in
        let result = pwritev(descriptor, segments.baseAddress, Int32(segments.count), offset)
        return (result, result < 0 ? errno : 0)
    }

    /// What the writes go through: the system call, or a device that fails as a test needs.
    private let vectorWrite: VectorWrite

    private init(
        descriptor: SystemPackage.FileDescriptor,
        threadPool: NIOThreadPool,
        vectorWrite: @escaping VectorWrite
    ) {
        self.descriptor = descriptor
        self.threadPool = threadPool
        self.vectorWrite = vectorWrite
    }

    deinit {
        try? self.descriptor.close()
    }

    /// Opens an existing file for direct writes.
    /// - Parameters:
    ///   - path: the file.
    ///   - threadPool: where the blocking writes run.
    ///   - vectorWrite: what the writes go through (tests give a failing device).
    /// - Returns: the writer, or `nil` where this platform or file system has no direct
    ///   writes (the caller then writes everything buffered).
    static func open(
        _ path: FilePath,
        threadPool: NIOThreadPool = DirectChunkWriter.threadPool,
        vectorWrite: @escaping VectorWrite = DirectChunkWriter.systemWrite
    ) -> DirectChunkWriter? {
        guard let direct = Self.directOption,
            let descriptor = try? SystemPackage.FileDescriptor.open(
                path,
                .writeOnly,
                options: [direct, .closeOnExec, .noFollow]
            )
        else { return nil }
        return DirectChunkWriter(descriptor: descriptor, threadPool: threadPool, vectorWrite: vectorWrite)
    }

    /// `O_DIRECT`, which Swift's Glibc module does not export: its value differs between
    /// architectures, so it is given only for those whose value is known here; elsewhere
    /// every write is buffered.
    static var directOption: SystemPackage.FileDescriptor.OpenOptions? {
        #if os(Linux) && (arch(x86_64) || arch(i386))
        SystemPackage.FileDescriptor.OpenOptions(rawValue: 0o40000)
        #elseif os(Linux) && (arch(arm64) || arch(arm))
        SystemPackage.FileDescriptor.OpenOptions(rawValue: 0o200000)
        #else
        nil
        #endif
    }

    /// What the writer has done so far.
    var currentStatistics: Statistics { self.statistics.withLock { $0 } }

    /// Chunks waiting for a lane (for tests).
    var pendingCount: Int { self.queue.withLock { $0.pending.count } }

    /// Writes a chunk directly, if it can be.
    /// - Parameters:
    ///   - bytes: the chunk.
    ///   - offset: where it goes in the file.
    /// - Returns: false if the chunk was not written directly (unaligned, the file system
    ///   refuses direct writes, or a write cut short left the rest unaligned): the caller
    ///   writes it buffered, over whatever part went directly, with the same bytes.
    /// - Throws: the device's error (a full disk, for one); `CancellationError` if the task
    ///   is cancelled before its chunk goes to the device; `NIOThreadPoolError` if the
    ///   thread pool has been shut down.
    func write(_ bytes: ByteBuffer, at offset: Int64) async throws -> Bool {
        let length = bytes.readableBytes
        guard length > 0, length % Self.alignment == 0, offset % Int64(Self.alignment) == 0,
            !self.refused.load(ordering: .relaxed)
        else { return false }
        try Task.checkCancellation()
        let aligned = self.aligned(bytes)
        let id = self.queue.withLock { queue in
            queue.nextID += 1
            return queue.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let startLane = self.queue.withLock { queue -> Bool in
                    queue.pending.append(
                        PendingWrite(id: id, offset: offset, bytes: aligned, continuation: continuation)
                    )
                    guard queue.activeLanes < Self.lanes else { return false }
                    queue.activeLanes += 1
                    return true
                }
                if startLane { self.submitLane() }
            }
        } onCancel: {
            // Only a chunk still queued is taken back; one a lane has taken is written.
            let withdrawn = self.queue.withLock { queue -> PendingWrite? in
                guard let index = queue.pending.firstIndex(where: { $0.id == id }) else { return nil }
                return queue.pending.remove(at: index)
            }
            withdrawn?.continuation.resume(throwing: CancellationError())
        }
    }

    /// `bytes` itself if it is placed on a boundary (`ChunkBufferAllocator`), or an aligned
    /// copy.
    private func aligned(_ bytes: ByteBuffer) -> ByteBuffer {
        let placed = bytes.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress) % Self.alignment == 0 }
        if placed { return bytes }
        self.statistics.withLock { $0.alignedCopies += 1 }
        // The allocator places byte 32 (a chunk frame's payload behind its file id) on a
        // boundary: skip 32 bytes and the copy starts there.
        var copy = ChunkBufferAllocator.buffer(exactCapacity: FileID.byteCount + bytes.readableBytes)
        copy.moveWriterIndex(forwardBy: FileID.byteCount)
        copy.moveReaderIndex(forwardBy: FileID.byteCount)
        copy.writeImmutableBuffer(bytes)
        return copy
    }

    /// Lanes of any writer submitted to a pool and not yet running.
    private static let waitingLanes = Atomic<Int>(0)

    private func submitLane() {
        Self.waitingLanes.add(1, ordering: .relaxed)
        self.threadPool.submit { state in
            Self.waitingLanes.subtract(1, ordering: .relaxed)
            self.runLane(state)
        }
    }

    /// A lane, on a pool thread: writes batches while chunks wait. While another lane waits
    /// for a thread, it goes to the back of the pool's queue after each batch instead, so
    /// that files take turns (a lane that wrote until its queue was empty kept a thread
    /// from the others for as long as its chunks came faster than the device took them;
    /// giving the thread up after every batch cost a wake-up per write). With the pool shut
    /// down, fails every queued chunk instead.
    private func runLane(_ state: NIOThreadPool.WorkItemState) {
        guard case .active = state else {
            while let batch = self.nextBatch() {
                for write in batch { write.continuation.resume(throwing: NIOThreadPoolError.ThreadPoolInactive()) }
            }
            return
        }
        // `nextBatch` ends the lane (and counts it out) once the queue is empty.
        while let batch = self.nextBatch() {
            self.writeBatch(batch)
            if Self.waitingLanes.load(ordering: .relaxed) > 0 {
                self.submitLane()
                return
            }
        }
    }

    /// The oldest queued chunk with every queued chunk that continues it on either side, up
    /// to `maximumBatchBytes`, taken off the queue; `nil`, ending the lane, if none is queued.
    private func nextBatch() -> [PendingWrite]? {
        self.queue.withLock { queue -> [PendingWrite]? in
            guard !queue.pending.isEmpty else {
                queue.activeLanes -= 1
                return nil
            }
            var batch = [queue.pending.removeFirst()]
            var bytes = batch[0].bytes.readableBytes
            var extended = true
            while extended && !queue.pending.isEmpty {
                extended = false
                if let index = queue.pending.firstIndex(where: { $0.end == batch[0].offset }),
                    bytes + queue.pending[index].bytes.readableBytes <= Self.maximumBatchBytes
                {
                    bytes += queue.pending[index].bytes.readableBytes
                    batch.insert(queue.pending.remove(at: index), at: 0)
                    extended = true
                }
                if let index = queue.pending.firstIndex(where: { $0.offset == batch[batch.count - 1].end }),
                    bytes + queue.pending[index].bytes.readableBytes <= Self.maximumBatchBytes
                {
                    bytes += queue.pending[index].bytes.readableBytes
                    batch.append(queue.pending.remove(at: index))
                    extended = true
                }
            }
            return batch
        }
    }

    /// Writes a batch of chunks that lie end to end, and resumes each chunk's writer: true
    /// once its bytes are on the device; false if the file system refused them or a short
    /// write left them unaligned (the caller writes them buffered, over whatever part went
    /// directly, with the same bytes); the device's error otherwise.
    private func writeBatch(_ batch: [PendingWrite]) {
        var written = 0
        var outcome: Result<Void, any Error> = .success(())
        let total = batch.reduce(0) { $0 + $1.bytes.readableBytes }
        var requests = 0
        while written < total {
            guard written % Self.alignment == 0 else { break }
            requests += 1
            let (result, error) = Self.withSegments(of: batch, from: written) { segments in
                self.vectorWrite(self.descriptor.rawValue, segments, off_t(batch[0].offset) + off_t(written))
            }
            if result > 0 {
                written += result
            } else if result < 0 && error == EINTR {
                continue
            } else if result < 0 && error == EINVAL {
                // This file system (or device) wants other alignment, or no direct writes
                // at all.
                if written == 0 { self.refused.store(true, ordering: .relaxed) }
                break
            } else {
                outcome = .failure(result < 0 ? Errno(rawValue: error) : Errno.noSpace)
                break
            }
        }
        self.statistics.withLock { statistics in
            statistics.deviceWrites += requests
            statistics.chunks += batch.count
            statistics.lastBatchDone = .now
        }
        var start = 0
        for write in batch {
            let end = start + write.bytes.readableBytes
            if end <= written {
                write.continuation.resume(returning: true)
            } else {
                switch outcome {
                case .success: write.continuation.resume(returning: false)
                case .failure(let error): write.continuation.resume(throwing: error)
                }
            }
            start = end
        }
    }

    /// Calls `body` with the `iovec`s of the batch's bytes from byte `position` on. Each
    /// buffer's bytes are reached inside its own `withUnsafeReadableBytes`, nested.
    private static func withSegments<Result>(
        of batch: [PendingWrite],
        from position: Int,
        _ body: (UnsafeBufferPointer<iovec>) -> Result
    ) -> Result {
        var segments: [iovec] = []
        segments.reserveCapacity(batch.count)
        func collect(_ index: Int, skipping skip: Int) -> Result {
            guard index < batch.count else { return segments.withUnsafeBufferPointer(body) }
            let bytes = batch[index].bytes
            guard skip < bytes.readableBytes else { return collect(index + 1, skipping: skip - bytes.readableBytes) }
            return bytes.withUnsafeReadableBytes { raw in
                let rest = UnsafeRawBufferPointer(rebasing: raw[skip...])
                segments.append(
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: rest.baseAddress), iov_len: rest.count)
                )
                return collect(index + 1, skipping: 0)
            }
        }
        return collect(0, skipping: position)
    }
}

/// A chunk waiting for a lane, with its aligned bytes and the task waiting for it.
private struct PendingWrite {
    /// Tells the write apart from others at the same offset, for cancellation.
    let id: UInt64
    let offset: Int64
    let bytes: ByteBuffer
    let continuation: CheckedContinuation<Bool, any Error>

    /// The file offset just past the chunk.
    var end: Int64 { self.offset + Int64(self.bytes.readableBytes) }
}
