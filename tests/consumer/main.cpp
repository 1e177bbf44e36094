// Builds a multi-task model through the installed mtl registries and runs one forward pass.
#include <torch/torch.h>

#include <iostream>

#include "mtl/mtl.h"

int main() {
  mtl::Config cfg = mtl::Config::from_string("backbone: {type: lenet}\n");
  mtl::DatasetSchema schema;
  schema.inputs.push_back({"image", {1, 36, 36}});
  mtl::ConfigNode node = cfg.root().component("backbone");
  mtl::Backbone bb = mtl::backbone_registry().get(node.type())(node, schema);
  at::Tensor features = bb->forward({{"image", torch::zeros({2, 1, 36, 36})}});
  std::cout << "consumer ok: features " << features.sizes() << "\n";
  return features.size(1) == 50 ? 0 : 1;
}
