// Process-wide glibc malloc settings for training. By default glibc serves every allocation above a
// (dynamic) threshold with a fresh mmap and returns freed memory to the kernel, so the large activation
// tensors of each step fault their pages in again on every step; page faults are slow (in a VM most of
// all) and serialise the threads of one process in the kernel. mtl keeps allocations below 32 MiB on the
// heap and freed memory in the process (up to 1 GiB), which removes almost all per-step faults.
#pragma once

#include <string>

namespace mtl {

/// Applies the settings once per process (later calls do nothing). Set MTL_MALLOC_TUNING=0 in the
/// environment to keep glibc's defaults. Returns a one-line description of what is in effect.
std::string configure_allocator();

}  // namespace mtl
