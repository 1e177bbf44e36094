#include "backbones/lenet.h"

#include "mtl/config/config_node.h"
#include "mtl/core/random.h"

namespace mtl {

LeNetBackboneImpl::LeNetBackboneImpl(const LeNetOptions& o) : options_(o) {
  int64_t c = o.image_shape[0], h = o.image_shape[1], w = o.image_shape[2];
  conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, o.channels1, 9)));
  conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.channels1, o.channels2, 5)));
  int64_t h2 = ((h - 8) / 2 - 4) / 2, w2 = ((w - 8) / 2 - 4) / 2;
  flat_ = o.channels2 * h2 * w2;
  fc_ = register_module("fc", torch::nn::Linear(flat_, o.out_features));
  if (o.channels_last) use_channels_last(*this);
}

at::Tensor LeNetBackboneImpl::forward(const TensorMap& inputs) {
  at::Tensor x = inputs.at(options_.input);
  if (options_.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  x = torch::relu(torch::max_pool2d(conv1_->forward(x), 2));
  x = torch::relu(torch::max_pool2d(conv2_->forward(x), 2));
  x = x.reshape({x.size(0), flat_});
  if (options_.dropout > 0) x = mtl::dropout(x, options_.dropout, is_training());
  return torch::relu(fc_->forward(x));
}

Backbone make_lenet_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  LeNetOptions o;
  const InputInfo& in = select_input(n, schema);
  o.input = in.name;
  n.check(in.shape.size() == 3, "input",
          "lenet needs an image input [C, H, W]; input '" + in.name + "' has " +
              std::to_string(in.shape.size()) + " dimensions");
  o.image_shape = in.shape;
  n.check(in.shape[1] >= 24 && in.shape[2] >= 24, "input", "lenet needs images of at least 24x24");
  std::vector<int64_t> ch = n.get<std::vector<int64_t>>("channels", {o.channels1, o.channels2});
  n.check(ch.size() == 2 && ch[0] > 0 && ch[1] > 0, "channels", "expected two positive channel counts");
  o.channels1 = ch[0];
  o.channels2 = ch[1];
  o.out_features = positive<int64_t>(n, "out_features", o.out_features);
  o.dropout = n.get<double>("dropout", o.dropout);
  n.check(o.dropout >= 0 && o.dropout < 1, "dropout", "expected a value in [0, 1)");
  o.channels_last = n.choice("memory_format", std::string("channels_last"), {"channels_last", "contiguous"}) ==
                    "channels_last";
  return std::make_shared<LeNetBackboneImpl>(o);
}

}  // namespace mtl
