import NIOCore
import NIOPosix
import Synchronization
import SystemPackage

/// Writes a download's chunks around the page cache (`O_DIRECT`), straight from the chunk's
/// buffer to the device when it arrived placed on a boundary (`ChunkBufferAllocator`), from
/// an aligned copy otherwise.
///
/// Why: a buffered write makes the kernel copy every downloaded byte into page-cache pages
/// it must first find, and keeps them dirty until writeback, though a download is written
/// once and read back rarely. On a host that gives freed memory back to its hypervisor
/// (free page reporting), each of those pages is also a fresh fault: buffered writes were
/// the largest single cost of a 16-peer swarm on 2 cores (BENCHMARKS.md). Written directly,
/// a chunk costs the kernel no copy at all, and the device does the rest. The writes block
/// a thread of the shared pool while the device works (two, on two cores: two writes in
/// flight were enough for this VM's disk to keep up with a 1 GiB loopback download).
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

    let descriptor: SystemPackage.FileDescriptor
    private let threadPool: NIOThreadPool
    /// Aligned buffers not in use, kept for the next chunks (at most `keptBuffers`).
    private let spareBuffers = Mutex<[AlignedBuffer]>([])
    /// Set once the file system refuses a direct write: every later chunk goes buffered.
    private let refused = Atomic<Bool>(false)
    private static let keptBuffers = 4

    private init(descriptor: SystemPackage.FileDescriptor, threadPool: NIOThreadPool) {
        self.descriptor = descriptor
        self.threadPool = threadPool
    }

    deinit {
        for buffer in self.spareBuffers.withLock({ $0 }) { buffer.pointer.deallocate() }
        try? self.descriptor.close()
    }

    /// Opens an existing file for direct writes.
    /// - Parameters:
    ///   - path: the file.
    ///   - threadPool: where the blocking writes run.
    /// - Returns: the writer, or `nil` where this platform or file system has no direct
    ///   writes (the caller then writes everything buffered).
    static func open(_ path: FilePath, threadPool: NIOThreadPool = .singleton) -> DirectChunkWriter? {
        guard let direct = Self.directOption,
            let descriptor = try? SystemPackage.FileDescriptor.open(
                path,
                .writeOnly,
                options: [direct, .closeOnExec]
            )
        else { return nil }
        return DirectChunkWriter(descriptor: descriptor, threadPool: threadPool)
    }

    /// `O_DIRECT`, which Swift's Glibc module does not export: its value differs between
    /// architectures, so it is given only for those whose value is known here; elsewhere
    /// every write is buffered.
    private static var directOption: SystemPackage.FileDescriptor.OpenOptions? {
        #if os(Linux) && (arch(x86_64) || arch(i386))
        SystemPackage.FileDescriptor.OpenOptions(rawValue: 0o40000)
        #elseif os(Linux) && (arch(arm64) || arch(arm))
        SystemPackage.FileDescriptor.OpenOptions(rawValue: 0o200000)
        #else
        nil
        #endif
    }

    /// Writes a chunk directly, if it can be.
    /// - Parameters:
    ///   - bytes: the chunk.
    ///   - offset: where it goes in the file.
    /// - Returns: false, having written nothing, if the chunk cannot be written directly
    ///   (unaligned, or the file system refuses direct writes): the caller writes it
    ///   buffered.
    /// - Throws: the device's error (a full disk, for one).
    func write(_ bytes: ByteBuffer, at offset: Int64) async throws -> Bool {
        let length = bytes.readableBytes
        guard length > 0, length % Self.alignment == 0, offset % Int64(Self.alignment) == 0,
            !self.refused.load(ordering: .relaxed)
        else { return false }
        return try await self.threadPool.runIfActive {
            try bytes.withUnsafeReadableBytes { chunk in
                // A chunk the frame decoder placed (`ChunkBufferAllocator`) is written as it
                // is; any other is copied into an aligned buffer first.
                if Int(bitPattern: chunk.baseAddress) % Self.alignment == 0 {
                    return try self.writeAligned(chunk, at: offset)
                }
                let buffer = self.takeBuffer(capacity: length)
                defer { self.giveBack(buffer) }
                let aligned = UnsafeMutableRawBufferPointer(start: buffer.pointer.baseAddress, count: length)
                aligned.copyMemory(from: chunk)
                return try self.writeAligned(UnsafeRawBufferPointer(aligned), at: offset)
            }
        }
    }

    /// Writes aligned bytes; false if the file system refuses, or if a short write left
    /// the rest unaligned: the caller then writes the whole chunk buffered (over whatever
    /// part went directly, with the same bytes).
    private func writeAligned(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws -> Bool {
        var written = 0
        while written < bytes.count {
            guard written % Self.alignment == 0 else { return false }
            do {
                written += try self.descriptor.write(
                    toAbsoluteOffset: offset + Int64(written),
                    UnsafeRawBufferPointer(rebasing: bytes[written...])
                )
            } catch Errno.invalidArgument {
                // This file system (or device) wants other alignment, or no direct writes
                // at all.
                if written == 0 { self.refused.store(true, ordering: .relaxed) }
                return false
            }
        }
        return true
    }

    /// Aligned buffers kept for chunks that did not arrive placed (for tests).
    var spareBufferCount: Int { self.spareBuffers.withLock { $0.count } }

    private func takeBuffer(capacity: Int) -> AlignedBuffer {
        let spare = self.spareBuffers.withLock { spare -> AlignedBuffer? in
            guard let index = spare.firstIndex(where: { $0.pointer.count >= capacity }) else { return nil }
            return spare.remove(at: index)
        }
        if let spare { return spare }
        return AlignedBuffer(
            pointer: .allocate(byteCount: capacity, alignment: Self.alignment)
        )
    }

    private func giveBack(_ buffer: AlignedBuffer) {
        let kept = self.spareBuffers.withLock { spare in
            guard spare.count < Self.keptBuffers else { return false }
            spare.append(buffer)
            return true
        }
        if !kept { buffer.pointer.deallocate() }
    }
}

/// Memory for one direct write, owned by whichever write holds it (or by the spare list).
private struct AlignedBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawBufferPointer
}
