#ifndef C_MALLOC_H
#define C_MALLOC_H

// glibc's allocator controls, which Swift's Glibc module does not export (see
// `AllocatorTuning`). `<malloc.h>` comes first: it is what defines `__GLIBC__`.
#if defined(__linux__)
#include <malloc.h>
#endif

/// The settings `c_malloc_set` changes.
typedef enum {
    /// `M_MMAP_THRESHOLD`: blocks from this size up may get mappings of their own.
    c_malloc_mmap_threshold,
    /// `M_TRIM_THRESHOLD`: free memory at a heap's top is returned beyond this.
    c_malloc_trim_threshold,
    /// `M_ARENA_MAX`: the most heaps (arenas) threads allocate from.
    c_malloc_arena_max,
} c_malloc_setting;

/// `mallopt(setting, value)`: 1 if the allocator took the value, 0 if not, and 0 wherever
/// the C library is not glibc.
static inline int c_malloc_set(c_malloc_setting setting, int value) {
#if defined(__GLIBC__)
    switch (setting) {
    case c_malloc_mmap_threshold:
        return mallopt(M_MMAP_THRESHOLD, value);
    case c_malloc_trim_threshold:
        return mallopt(M_TRIM_THRESHOLD, value);
    case c_malloc_arena_max:
        return mallopt(M_ARENA_MAX, value);
    }
    return 0;
#else
    (void)setting;
    (void)value;
    return 0;
#endif
}

#endif
