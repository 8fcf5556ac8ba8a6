import NIOCore
import NIOPosix
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads chunks of a finished download back from the device around the page cache
/// (`O_DIRECT`), into one aligned buffer reused for every chunk, and fingerprints them
/// (`InternetChecksum.wordSum`): the read-back before the rename (`ChunkFile`).
///
/// Why direct: the chunks were written directly, so none of them is in the page cache, and
/// a buffered read makes the kernel find a fresh page-cache page for every 4 KiB read. On
/// a host that gives freed memory back to its hypervisor each such page is a fault of the
/// host's too: here a buffered read of 1 GiB just written took 1.8 CPU-seconds and 2.7 s,
/// a direct one 0.14 CPU-seconds and 0.43 s. Nor is a download worth caching: it is read
/// again only to serve other peers, which read it then.
struct DirectReadBack: ~Copyable {
    private let descriptor: SystemPackage.FileDescriptor
    private let threadPool: NIOThreadPool
    /// The buffer every chunk is read into: one chunk, rounded up to whole blocks.
    private let buffer: UnsafeMutableRawBufferPointer

    /// Opens `path` for direct reads of chunks up to `chunkSize` bytes.
    /// - Returns: the reader, or `nil` where this platform or file system has no direct
    ///   reads (the caller then reads buffered).
    init?(
        _ path: FilePath,
        chunkSize: Int,
        threadPool: NIOThreadPool = DirectChunkWriter.threadPool
    ) {
        guard let direct = DirectChunkWriter.directOption,
            let descriptor = try? SystemPackage.FileDescriptor.open(
                path,
                .readOnly,
                options: [direct, .closeOnExec, .noFollow]
            )
        else { return nil }
        let alignment = DirectChunkWriter.alignment
        let capacity = (chunkSize + alignment - 1) / alignment * alignment
        self.descriptor = descriptor
        self.threadPool = threadPool
        self.buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: alignment)
    }

    deinit {
        self.buffer.deallocate()
        try? self.descriptor.close()
    }

    /// The fingerprint of `length` bytes at `offset`, read from the device.
    /// - Returns: the fingerprint; `nil` if fewer bytes are there (a file cut short).
    /// - Throws: the device's error, `DirectReadBack.Refused` if the file system refuses
    ///   this direct read or the offset is not on a block boundary (chunks of a size that
    ///   is not a multiple of a block), or `CancellationError`.
    func fingerprint(length: Int, at offset: Int64) async throws -> UInt64? {
        guard length <= self.buffer.count, offset % Int64(DirectChunkWriter.alignment) == 0 else { throw Refused() }
        try Task.checkCancellation()
        let alignment = DirectChunkWriter.alignment
        let request = (length + alignment - 1) / alignment * alignment
        let fd = self.descriptor.rawValue
        // The buffer is this reader's alone and outlives the call, which the caller awaits.
        let address = UInt(bitPattern: self.buffer.baseAddress)
        let (read, error) = try await self.threadPool.runIfActive { () -> (Int, Int32) in
            let destination = UnsafeMutableRawPointer(bitPattern: address)
            var total = 0
            // Bounded: each pass reads more bytes, or ends the loop.
            while total < request {
                let result = pread(fd, destination.map { $0 + total }, request - total, off_t(offset) + off_t(total))
                if result < 0 {
                    if errno == EINTR { continue }
                    return (total, errno)
                }
                if result == 0 { break }
                total += result
            }
            return (total, 0)
        }
        if error == EINVAL { throw Refused() }
        if error != 0 { throw IOError(errnoCode: error, reason: "pread") }
        guard read >= length else { return nil }
        return InternetChecksum.wordSum(UnsafeRawBufferPointer(rebasing: self.buffer[0..<length]))
    }

    /// The file system refuses a direct read (alignment it does not take, for one).
    struct Refused: Error {}
}
