// libFuzzer's entry point for programs that have a main of their own (SwiftPM executables
// always do: it links them with main renamed from <Target>_main), from
// compiler-rt/lib/fuzzer/FuzzerInterface.h. The definition comes with -sanitize=fuzzer.
#ifndef CFUZZDRIVER_H
#define CFUZZDRIVER_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));

#endif
