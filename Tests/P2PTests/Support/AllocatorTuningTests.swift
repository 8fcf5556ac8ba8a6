import Testing

@testable import P2P

#if canImport(Glibc)
import Glibc
#endif

@Suite("Allocator tuning")
struct AllocatorTuningTests {
    #if os(Linux)
    /// Page faults this thread has taken so far.
    private static func threadFaults() -> Int {
        var usage = rusage()
        // RUSAGE_THREAD (1), which the Glibc module leaves out: other tests run meanwhile.
        getrusage(__rusage_who_t(1), &usage)
        return usage.ru_minflt
    }

    /// Allocates `count` chunk-sized blocks, touches every page of each, frees them all,
    /// and returns the faults it took.
    private static func churn(count: Int, size: Int) -> Int {
        let before = Self.threadFaults()
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<count {
            let block = malloc(size)!
            memset(block, 0x5A, size)
            blocks.append(block)
        }
        for block in blocks { free(block) }
        return Self.threadFaults() - before
    }

    @Test("chunk buffers freed are reused: the second round of allocations takes no new pages")
    func freedChunkBuffersAreReused() {
        #expect(AllocatorTuning.apply())
        // A chunk's buffer must stay below the mapping threshold, or none of this applies.
        #expect(Int(AllocatorTuning.mmapThreshold) > ChunkSizing.baseChunkSize + ChunkBufferAllocator.overhead)
        // Eight 256 KiB chunks with the chunk allocator's overhead (2 MiB in all). Under
        // glibc's defaults the first round is mapped and unmapped block by block, and the
        // second comes from a heap grown for it: a fault per page either way (520 here).
        let size = 256 * 1024 + ChunkBufferAllocator.overhead
        let pages = 8 * size / 4096
        let first = Self.churn(count: 8, size: size)
        let second = Self.churn(count: 8, size: size)
        let third = Self.churn(count: 8, size: size)
        #expect(min(second, third) < pages / 8, "faults: \(first), then \(second) and \(third) of \(pages) pages")
    }
    #endif
}
