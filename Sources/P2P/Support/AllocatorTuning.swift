#if os(Linux) && canImport(Glibc)
import CMalloc
#endif

/// Keeps chunk-sized buffers in `malloc`'s heap, to be reused, rather than mapping and
/// unmapping them: call once, first thing in a process that runs a peer.
///
/// Why: a peer allocates and frees a buffer the size of a chunk (256 KiB) for every chunk it
/// receives, reads or assembles. glibc's defaults give such blocks mappings of their own at
/// first, and later hand the heap's free top back to the kernel whenever more than two
/// blocks' worth is free there; either way the next buffer's pages are new, and each 4 KiB
/// of them is a page fault (on a VM that returns freed memory to its host, a fault of the
/// host's too). With these settings a freed buffer is the next one handed out. Measured
/// (BENCHMARKS.md, session 8): a 1 GiB loopback download took 3,600 faults instead of
/// 30,000–45,000, its seeder 2,900 instead of 100,000–160,000; a 16-peer flash crowd
/// 95,000–110,000 instead of 160,000–200,000, with about half a CPU-second less kernel
/// time. The price is up to `trimThreshold` of freed memory kept (peak RSS +2 MiB in the
/// memory benchmark).
public enum AllocatorTuning {
    /// Blocks from this size up still get mappings of their own: the chunks of files above
    /// 128 GiB, which are rare and large enough that a fault per page matters less.
    public static let mmapThreshold: Int32 = 4 << 20
    /// Free memory at the top of a heap is given back only beyond this.
    public static let trimThreshold: Int32 = 32 << 20

    /// Applies the settings.
    /// - Returns: whether the allocator took them; false where it is not glibc's (nothing
    ///   changes there).
    @discardableResult
    public static func apply() -> Bool {
        #if os(Linux) && canImport(Glibc)
        return c_malloc_set_mmap_threshold(Self.mmapThreshold) == 1
            && c_malloc_set_trim_threshold(Self.trimThreshold) == 1
        #else
        return false
        #endif
    }
}
