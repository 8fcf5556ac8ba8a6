#ifndef C_MALLOC_H
#define C_MALLOC_H

// glibc's allocator controls, which Swift's Glibc module does not export. Each returns
// what `mallopt` does: 1 if the allocator took the value, 0 if not; 0 wherever the C
// library is not glibc (see `AllocatorTuning`). `<malloc.h>` comes first: it is what
// defines `__GLIBC__`.
#if defined(__linux__)
#include <malloc.h>
#endif

/// `mallopt(M_MMAP_THRESHOLD, bytes)`: blocks from this size up may get mappings of their own.
static inline int c_malloc_set_mmap_threshold(int bytes) {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
    return mallopt(M_MMAP_THRESHOLD, bytes);
#else
    (void)bytes;
    return 0;
#endif
}

/// `mallopt(M_TRIM_THRESHOLD, bytes)`: free memory at a heap's top is returned beyond this.
static inline int c_malloc_set_trim_threshold(int bytes) {
#if defined(__GLIBC__) && defined(M_TRIM_THRESHOLD)
    return mallopt(M_TRIM_THRESHOLD, bytes);
#else
    (void)bytes;
    return 0;
#endif
}

#endif
