#ifndef C_MALLOC_H
#define C_MALLOC_H

// glibc's allocator controls, which Swift's Glibc module does not export. Each returns
// what `mallopt` does: 1 if the allocator took the value. Absent where the C library is
// not glibc: see `AllocatorTuning`.
#if defined(__linux__)
#include <malloc.h>
#endif

#if defined(__linux__) && defined(__GLIBC__)

/// `mallopt(M_MMAP_THRESHOLD, bytes)`: blocks from this size up get mappings of their own.
static inline int c_malloc_set_mmap_threshold(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes);
}

/// `mallopt(M_TRIM_THRESHOLD, bytes)`: free memory at a heap's top is returned beyond this.
static inline int c_malloc_set_trim_threshold(int bytes) {
    return mallopt(M_TRIM_THRESHOLD, bytes);
}
#endif

#endif
