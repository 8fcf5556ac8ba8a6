import CMalloc

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps chunk buffers in `malloc`'s heap, to be reused, rather than mapping and unmapping
/// them: call once, before a peer starts (the settings are process-wide).
///
/// Why: a peer allocates and frees a buffer for every chunk it receives, reads or assembles
/// (256 KiB and the file id in front, `ChunkBufferAllocator`). glibc's defaults give such
/// blocks mappings of their own at first, and later hand the heap's free top back to the
/// kernel whenever more than twice the largest block freed so far is free there; either way
/// the next buffer's pages are new, and each 4 KiB of them is a page fault (on a VM that
/// returns freed memory to its host, a fault of the host's too). Setting both thresholds
/// also ends glibc's sliding of them, so a freed buffer is the next one handed out.
/// With it (docs/benchmark-log.md) a 1 GiB loopback download takes 3,600 faults instead of
/// 27,000–45,000, its seeder 2,900 instead of 95,000–160,000; a flash crowd of a seeder and
/// 15 downloaders 95,000–110,000 instead of 160,000–200,000, with about half a CPU-second
/// less kernel time. The price is up to `trimThreshold` of freed memory kept
/// (peak RSS +1–3 MiB in the memory benchmark).
///
/// The heaps are also limited to two (`M_ARENA_MAX`; glibc's default is eight per core):
/// each keeps up to `trimThreshold` of freed memory, and a peer's threads (event loops, the
/// blocking pool, the concurrency pool) would otherwise each take one, and a downloader in
/// a crowd holds that much more at its peak (docs/benchmark-log.md, probe AF).
///
/// Settings a user made through the environment (`GLIBC_TUNABLES`' `glibc.malloc.*`, or
/// `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` and `MALLOC_ARENA_MAX`) are left as
/// they are.
package enum AllocatorTuning {
    /// Blocks below this size always come from the heap: the buffers of chunks up to 4 MiB
    /// (files up to 256 GiB). Larger ones may get mappings of their own, which go back to
    /// the kernel as soon as they are freed, so that a peer moving a huge file does not keep
    /// a heap of its 8–16 MiB buffers.
    package static let mmapThreshold: Int32 = 8 << 20
    /// Free memory at the top of a heap is given back only beyond this.
    package static let trimThreshold: Int32 = 32 << 20
    /// The most heaps threads allocate from.
    package static let arenaLimit: Int32 = 2

    /// Applies the settings, unless the environment already tunes the allocator.
    /// - Parameter environment: looks up an environment variable (the process's own by
    ///   default).
    /// - Returns: whether the allocator took them; false where the user's settings stand,
    ///   or where the allocator is not glibc's (nothing changes there).
    @discardableResult
    package static func apply(environment: (String) -> String? = Self.processEnvironment) -> Bool {
        if !Self.limitsArenasByUser(environment: environment) {
            _ = c_malloc_set(c_malloc_arena_max, Self.arenaLimit)
        }
        guard !Self.isTunedByUser(environment: environment) else { return false }
        return c_malloc_set(c_malloc_mmap_threshold, Self.mmapThreshold) == 1
            && c_malloc_set(c_malloc_trim_threshold, Self.trimThreshold) == 1
    }

    /// Whether the environment sets how many heaps glibc makes.
    static func limitsArenasByUser(environment: (String) -> String?) -> Bool {
        environment("MALLOC_ARENA_MAX") != nil
            || environment("GLIBC_TUNABLES")?.contains("glibc.malloc.arena_max") == true
    }

    /// Whether the environment sets glibc's mapping or trim threshold.
    static func isTunedByUser(environment: (String) -> String?) -> Bool {
        if environment("MALLOC_MMAP_THRESHOLD_") != nil || environment("MALLOC_TRIM_THRESHOLD_") != nil {
            return true
        }
        guard let tunables = environment("GLIBC_TUNABLES") else { return false }
        return tunables.contains("glibc.malloc.mmap_threshold") || tunables.contains("glibc.malloc.trim_threshold")
    }

    /// The process's environment.
    package static func processEnvironment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
