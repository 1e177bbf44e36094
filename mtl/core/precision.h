// Training precision (`trainer.precision`): float32, or bfloat16 mixed precision on CPU. In bf16 the forward
// pass runs under LibTorch's CPU autocast (matrix products and convolutions in bfloat16, with the float32
// weights cast per op), so the backward pass of those ops runs in bfloat16 too; the weights, their gradients,
// the optimizer state, the losses and the weighting methods stay float32, and checkpoints are unchanged.
//
//   mtl::PrecisionScope scope(mtl::Precision::kBFloat16);   // this thread's ops autocast until the scope ends
#pragma once

#include <string>

namespace mtl {

enum class Precision { kFloat32, kBFloat16 };

/// "float32" or "bf16".
std::string precision_name(Precision p);

/// Whether this machine's cores have native bfloat16 instructions (the avx512_bf16 or amx_bf16 flag of
/// `cpuinfo`, default /proc/cpuinfo; the environment variable MTL_CPUINFO names another file). Without them
/// LibTorch emulates bfloat16 and training gets slower, not faster.
bool cpu_has_bf16(const std::string& cpuinfo = "");

/// Autocast of the calling thread's ops to bfloat16 while the scope lives (a no-op for kFloat32). Autocast is
/// per thread: every worker thread that runs a forward pass opens its own scope.
class PrecisionScope {
 public:
  explicit PrecisionScope(Precision p);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  bool active_ = false;
  bool was_enabled_ = false;
  int was_dtype_ = 0;
};

}  // namespace mtl
