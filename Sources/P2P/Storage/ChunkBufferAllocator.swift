@_spi(CustomByteBufferAllocator) import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Buffers for frame payloads that carry a chunk: the payload is the 32-byte file id and
/// then the chunk, and these buffers place it so that the chunk's first byte falls on a
/// `DirectChunkWriter.alignment` boundary.
///
/// Why: a direct write takes its bytes only from aligned memory. With the chunk where the
/// frame decoder assembled it already aligned, `DirectChunkWriter` writes it as it is;
/// otherwise every downloaded byte was copied once more, into an aligned buffer (a tenth of
/// a single-source download's CPU).
///
/// Uses NIO's custom-allocator SPI: a `ByteBuffer`'s bytes start at the pointer its
/// allocator returns, so an allocator that returns a pointer 32 bytes before a boundary
/// puts byte 32 on it. The memory comes from `malloc`, a page larger than asked, with the
/// block's own address kept just before the returned pointer for `free`. Not
/// `posix_memalign`: glibc serves every such block with a fresh `mmap`, a page fault for
/// every 4 KiB downloaded.
enum ChunkBufferAllocator {
    /// The allocator.
    static let allocator = ByteBufferAllocator(
        allocate: chunkBufferAllocate,
        reallocate: chunkBufferReallocate,
        deallocate: chunkBufferDeallocate,
        copy: chunkBufferCopy
    )

    /// Bytes asked of `malloc` beyond the buffer: room to reach the boundary, and the
    /// block's address in front.
    static let overhead = DirectChunkWriter.alignment + FileID.byteCount + MemoryLayout<UnsafeMutableRawPointer>.size

    /// A buffer of exactly `capacity` bytes, placed like the allocator's, with nothing
    /// written yet; should it grow, it moves to a block the allocator's way.
    ///
    /// Why: `ByteBufferAllocator.buffer(capacity:)` rounds every capacity up to a power of
    /// two, so a 256 KiB chunk behind its 32-byte file id got a 512 KiB block, half of which
    /// was never used: twice the memory per chunk held (in flight, being verified, queued
    /// for forwarding), and twice the heap for `malloc` to keep.
    static func buffer(exactCapacity capacity: Int) -> ByteBuffer {
        guard capacity > 0, let memory = chunkBufferAllocate(size_t(capacity)) else {
            return Self.allocator.buffer(capacity: capacity)
        }
        return ByteBuffer(
            takingOwnershipOf: UnsafeMutableRawBufferPointer(start: memory, count: capacity),
            allocator: Self.allocator,
            writerIndex: 0
        )
    }
}

private func chunkBufferAllocate(_ size: size_t) -> UnsafeMutableRawPointer? {
    guard let block = malloc(size + ChunkBufferAllocator.overhead) else { return nil }
    let alignment = DirectChunkWriter.alignment
    let pointerSize = MemoryLayout<UnsafeMutableRawPointer>.size
    // The first boundary with room for the block's address and the file id before it.
    let address = Int(bitPattern: block) + pointerSize + FileID.byteCount
    let boundary = (address + alignment - 1) / alignment * alignment
    let buffer = UnsafeMutableRawPointer(bitPattern: boundary - FileID.byteCount)!
    (buffer - pointerSize).storeBytes(of: block, as: UnsafeMutableRawPointer.self)
    return buffer
}

private func chunkBufferReallocate(
    _ pointer: UnsafeMutableRawPointer?,
    _ oldSize: size_t,
    _ newSize: size_t
) -> UnsafeMutableRawPointer? {
    // `realloc` would not keep the alignment: move the bytes to a new block.
    guard let fresh = chunkBufferAllocate(newSize) else { return nil }
    if let pointer {
        fresh.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
        chunkBufferDeallocate(pointer)
    }
    return fresh
}

private func chunkBufferDeallocate(_ pointer: UnsafeMutableRawPointer) {
    free((pointer - MemoryLayout<UnsafeMutableRawPointer>.size).load(as: UnsafeMutableRawPointer.self))
}

private func chunkBufferCopy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: size_t) {
    destination.copyMemory(from: source, byteCount: count)
}
