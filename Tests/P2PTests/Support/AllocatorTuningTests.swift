import NIOCore
import Testing

@testable import P2P

#if canImport(Glibc)
import Glibc
#endif

@Suite("Allocator tuning")
struct AllocatorTuningTests {
    #if os(Linux) && canImport(Glibc)
    /// Page faults this thread has taken so far.
    private static func threadFaults() -> Int {
        var usage = rusage()
        // RUSAGE_THREAD (1), which the Glibc module leaves out: other tests run meanwhile.
        getrusage(__rusage_who_t(1), &usage)
        return usage.ru_minflt
    }

    /// Allocates eight chunk buffers as the frame decoder does, writes every byte of each,
    /// drops them all, and returns the faults that took.
    private static func churn(capacity: Int) -> Int {
        let before = Self.threadFaults()
        var buffers: [ByteBuffer] = []
        for _ in 0..<8 {
            var buffer = ChunkBufferAllocator.buffer(exactCapacity: capacity)
            buffer.writeRepeatingByte(0x5A, count: buffer.capacity)
            buffers.append(buffer)
        }
        buffers.removeAll()
        return Self.threadFaults() - before
    }

    // A synchronous test: its body runs on one thread, whose faults `churn` counts. The
    // settings stay for the rest of the test process, as they would in `p2p`. (Under a
    // sanitizer, whose allocator ignores `mallopt`, this test fails.)
    @Test("chunk buffers freed are reused: later rounds of allocations take few new pages")
    func freedChunkBuffersAreReused() {
        #expect(AllocatorTuning.apply(environment: { _ in nil }))
        // A chunk frame's payload: the file id, then a chunk. The largest chunks below
        // 16 MiB must still come from the heap.
        let capacity = FileID.byteCount + ChunkSizing.baseChunkSize
        #expect(
            FileID.byteCount + ChunkSizing.maximumChunkSize / 4 + ChunkBufferAllocator.overhead
                < Int(AllocatorTuning.mmapThreshold),
            "4 MiB chunks' buffers must come from the heap"
        )
        // Under glibc's defaults (with nothing else freed in this process before) every
        // round's buffers are new memory: a fault for nearly every page written (measured
        // with `apply` stubbed out). One block taken meanwhile by another thread sharing this
        // arena would cost 65.
        let touchedPages = 8 * ((capacity + 4095) / 4096)
        let first = Self.churn(capacity: capacity)
        let second = Self.churn(capacity: capacity)
        let third = Self.churn(capacity: capacity)
        #expect(
            min(second, third) < touchedPages / 4,
            "faults: \(first), then \(second) and \(third), for \(touchedPages) pages written per round"
        )
    }
    #endif

    @Test("settings made through the environment are left to stand")
    func environmentTuningWins() {
        func tuned(_ environment: [String: String]) -> Bool {
            AllocatorTuning.isTunedByUser(environment: { environment[$0] })
        }
        #expect(!tuned([:]))
        #expect(!tuned(["GLIBC_TUNABLES": "glibc.pthread.rseq=0"]))
        #expect(tuned(["GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1048576"]))
        #expect(tuned(["GLIBC_TUNABLES": "glibc.pthread.rseq=0:glibc.malloc.mmap_threshold=65536"]))
        #expect(tuned(["MALLOC_MMAP_THRESHOLD_": "65536"]))
        #expect(tuned(["MALLOC_TRIM_THRESHOLD_": "0"]))
        #expect(!AllocatorTuning.apply(environment: { $0 == "MALLOC_TRIM_THRESHOLD_" ? "0" : nil }))
        func arenas(_ environment: [String: String]) -> Bool {
            AllocatorTuning.limitsArenasByUser(environment: { environment[$0] })
        }
        #expect(!arenas([:]))
        #expect(!arenas(["GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1048576"]))
        #expect(arenas(["MALLOC_ARENA_MAX": "8"]))
        #expect(arenas(["GLIBC_TUNABLES": "glibc.pthread.rseq=0:glibc.malloc.arena_max=4"]))
    }
}
