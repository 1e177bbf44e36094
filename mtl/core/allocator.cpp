#include "mtl/core/allocator.h"

#include <cstdlib>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mtl {

std::string configure_allocator() {
  static std::once_flag once;
  static std::string state;
  std::call_once(once, [] {
    const char* env = std::getenv("MTL_MALLOC_TUNING");
    if (env && std::string(env) == "0") {
      state = "glibc malloc defaults (MTL_MALLOC_TUNING=0)";
      return;
    }
#if defined(__GLIBC__)
    bool ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
    ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && ok;
    state = ok ? "malloc tuned (mmap threshold 32 MiB, trim threshold 1 GiB)" : "malloc tuning refused by glibc";
#else
    state = "system allocator defaults (not glibc)";
#endif
  });
  return state;
}

}  // namespace mtl
