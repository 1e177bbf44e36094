#include "mtl/core/precision.h"

#include <ATen/autocast_mode.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mtl {

std::string precision_name(Precision p) { return p == Precision::kBFloat16 ? "bf16" : "float32"; }

bool cpu_has_bf16(const std::string& cpuinfo) {
  std::string path = cpuinfo;
  if (path.empty()) {
    const char* env = std::getenv("MTL_CPUINFO");
    path = env != nullptr && *env != '\0' ? env : "/proc/cpuinfo";
  }
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') == std::string::npos ? 0 : line.find(':') + 1));
    std::string flag;
    while (words >> flag)
      if (flag == "avx512_bf16" || flag == "amx_bf16") return true;
    return false;  // every core lists the same flags
  }
  return false;
}

PrecisionScope::PrecisionScope(Precision p) : active_(p == Precision::kBFloat16) {
  if (!active_) return;
  was_enabled_ = at::autocast::is_cpu_enabled();
  was_dtype_ = static_cast<int>(at::autocast::get_autocast_cpu_dtype());
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::increment_nesting();
}

PrecisionScope::~PrecisionScope() {
  if (!active_) return;
  // The cache of weights cast to bfloat16 lives while any scope of this thread is open: the weights change
  // at every optimizer step, so it is dropped when the outermost scope closes.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(was_enabled_);
  at::autocast::set_autocast_cpu_dtype(static_cast<at::ScalarType>(was_dtype_));
}

}  // namespace mtl
