// A random MultiFashion-shaped batch (image [n, 1, 36, 36], class labels left and right) for engine tests
// that need gradients, not data.
#pragma once

#include <torch/torch.h>

#include "mtl/core/batch.h"

namespace mtl_test {

inline mtl::Batch random_multi_fashion_batch(int64_t n) {
  mtl::Batch b;
  b.inputs["image"] = torch::randn({n, 1, 36, 36});
  b.targets["left"] = torch::randint(0, 10, {n});
  b.targets["right"] = torch::randint(0, 10, {n});
  b.size = n;
  return b;
}

}  // namespace mtl_test
