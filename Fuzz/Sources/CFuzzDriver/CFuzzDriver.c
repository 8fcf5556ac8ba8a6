// Nothing to compile: the module only declares LLVMFuzzerRunDriver (include/CFuzzDriver.h).
#include "CFuzzDriver.h"
