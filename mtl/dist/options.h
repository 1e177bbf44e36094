// The `distributed:` section of a config (mtl/dist/process_group.h uses it). A plain `mtl train` without
// torchrun's variables is one process whatever this section says.
//   distributed: {backend: gloo, timeout: 60}
#pragma once

#include <string>

namespace mtl {

class ConfigNode;

struct DistributedOptions {
  std::string backend = "gloo";  // the only backend of a CPU LibTorch (nccl needs CUDA)
  double timeout_s = 60.0;       // a collective or the rendezvous waiting longer than this fails the run
};
DistributedOptions parse_distributed_options(const ConfigNode& node);

}  // namespace mtl
