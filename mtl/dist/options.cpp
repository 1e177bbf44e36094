#include "mtl/dist/options.h"

#include "mtl/config/config_node.h"

namespace mtl {

DistributedOptions parse_distributed_options(const ConfigNode& node) {
  DistributedOptions o;
  o.backend = node.choice("backend", o.backend, {"gloo", "nccl"});
  node.check(o.backend == "gloo", "backend",
             "gloo (nccl needs a CUDA build of LibTorch; this one runs on the CPU)");
  o.timeout_s = node.get<double>("timeout", o.timeout_s);
  node.check(o.timeout_s > 0, "timeout", "a positive number of seconds");
  return o;
}

}  // namespace mtl
