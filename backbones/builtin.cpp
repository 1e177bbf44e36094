// The explicit list of built-in backbones: one line per backbone.
#include "backbones/backbone.h"
#include "backbones/embedding_bag.h"
#include "backbones/lenet.h"
#include "backbones/mlp.h"
#include "backbones/multimodal.h"
#include "backbones/resnet.h"
#include "backbones/rnn.h"
#include "backbones/text_cnn.h"
#include "backbones/torchvision_resnet.h"
#include "backbones/torchvision_vit.h"
#include "backbones/transformer.h"
#include "mtl/config/config_node.h"

namespace mtl {

namespace {
void register_builtin_backbones(Registry<BackboneFactory>& r) {
  r.add("mlp", make_mlp_backbone);
  r.add("lenet", make_lenet_backbone);
  r.add("resnet", make_resnet_backbone);
  r.add("multimodal", make_multimodal_backbone);
  r.add("embedding_bag", make_embedding_bag_backbone);
  r.add("text_cnn", make_text_cnn_backbone);
  r.add("rnn", make_rnn_backbone);
  r.add("transformer", make_transformer_backbone);
  for (const std::string& arch : torchvision_resnet_archs()) r.add(arch, torchvision_resnet_factory(arch));
  for (const std::string& type : torchvision_vit_types()) r.add(type, torchvision_vit_factory(type));
}
}  // namespace

Registry<BackboneFactory>& backbone_registry() {
  static Registry<BackboneFactory> r = [] {
    Registry<BackboneFactory> reg("backbone");
    register_builtin_backbones(reg);
    return reg;
  }();
  return r;
}

at::Tensor BackboneImpl::stage(int64_t, const TensorMap&, const at::Tensor&) {
  TORCH_CHECK(false, "this backbone does not run in stages");
}

void use_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    // Not p.contiguous(ChannelsLast): with one input channel that is a no-op (NCHW strides are also valid
    // NHWC strides there), and LibTorch, seeing NCHW strides, then runs the layer in NCHW.
    if (p.dim() == 4) p.set_data(at::empty(p.sizes(), p.options().memory_format(at::MemoryFormat::ChannelsLast)).copy_(p));
}

const InputInfo& select_input(const ConfigNode& options, const DatasetSchema& schema) {
  std::vector<std::string> names;
  for (const auto& i : schema.inputs) names.push_back(i.name);
  std::string name = options.get<std::string>("input", schema.inputs.size() == 1 ? schema.inputs[0].name : "");
  if (name.empty())
    options.fail("input", "the dataset has several inputs (" + join(names) + "); say which one with 'input'");
  const InputInfo* in = schema.input(name);
  if (!in) options.fail("input", "the dataset has no input '" + name + "'" + did_you_mean(name, names) +
                                     "; it has: " + join(names));
  return *in;
}

}  // namespace mtl
