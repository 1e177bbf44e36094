#include "mtl/model/architecture.h"

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include "mtl/model/expert_architectures.h"
#include "mtl/model/layerwise_architectures.h"

namespace mtl {

namespace {

bool has_parameters(const torch::nn::Module& m) { return !m.parameters().empty(); }

// "embedding,position" -> {prefix + "embedding", prefix + "position"}.
std::vector<std::string> split_prefixes(const std::string& block, const std::string& prefix) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= block.size()) {
    size_t comma = block.find(',', start);
    if (comma == std::string::npos) comma = block.size();
    if (comma > start) out.push_back(prefix + block.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

ArchitecturePtr make_hps(const ConfigNode& options, const ArchitectureContext& ctx) {
  (void)options;
  return std::make_shared<HpsArchitecture>(ctx.make_backbone(ctx.backbone, ctx.schema), ctx.tasks.size());
}

void register_builtin_architectures(Registry<ArchitectureFactory>& r) {
  r.add("hps", make_hps);
  r.add("mmoe", make_mmoe);
  r.add("cgc", make_cgc);
  r.add("ple", make_ple);
  r.add("dselect_k", make_dselect_k);
  r.add("cross_stitch", make_cross_stitch);
  r.add("mtan", make_mtan);
  r.add("branch", make_branch);
  r.add("ltb", make_ltb);
}

}  // namespace

std::vector<std::vector<std::string>> backbone_block_prefixes(const BackboneImpl& backbone,
                                                              const std::string& prefix) {
  std::vector<std::vector<std::string>> out;
  for (const auto& b : backbone.block_names()) out.push_back(split_prefixes(b, prefix));
  if (!out.empty()) return out;
  for (const auto& child : backbone.named_children()) {
    const auto& m = child.value();
    if (!has_parameters(*m)) continue;
    bool container = m->as<torch::nn::ModuleListImpl>() || m->as<torch::nn::SequentialImpl>();
    if (!container) {
      out.push_back({prefix + child.key()});
      continue;
    }
    for (const auto& element : m->named_children())
      if (has_parameters(*element.value())) out.push_back({prefix + child.key() + "." + element.key()});
  }
  return out;
}

TensorMap example_inputs(const DatasetSchema& schema) {
  TensorMap out;
  for (const auto& in : schema.inputs) {
    std::vector<int64_t> shape{2};
    shape.insert(shape.end(), in.shape.begin(), in.shape.end());
    out[in.name] = in.kind == InputKind::kTokens ? at::ones(shape, at::kLong) : at::zeros(shape);
  }
  return out;
}

std::vector<int64_t> probe_map_channels(Architecture& architecture, const DatasetSchema& schema) {
  if (!architecture.keep_maps()) return {};
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::shared_ptr<torch::nn::Module>, bool>> modes;
  for (auto& [name, m] : architecture.modules()) {
    modes.emplace_back(m, m->is_training());
    m->eval();
  }
  TrunkOutput out = architecture.forward(example_inputs(schema));
  for (auto& [m, training] : modes) m->train(training);
  std::vector<int64_t> channels;
  if (!out.maps.empty())
    for (const auto& m : out.maps[0]) channels.push_back(m.size(1));
  return channels;
}

TrunkOutput HpsArchitecture::forward(const TensorMap& inputs) {
  if (keep_maps_) {  // stage by stage: the last stage's output is the pooled features
    TrunkOutput out;
    std::vector<at::Tensor> maps;
    at::Tensor x;
    for (int64_t i = 0; i < backbone_->num_stages(); ++i) {
      x = backbone_->stage(i, inputs, x);
      if (x.dim() == 4) maps.push_back(x);
    }
    out.shared = x;
    out.task.assign(tasks_, x);
    out.maps.assign(tasks_, maps);
    return out;
  }
  Features f = backbone_->encode(inputs);
  TrunkOutput out;
  out.shared = f.pooled;
  out.task.assign(tasks_, f.pooled);
  out.tokens = f.tokens;
  return out;
}

std::vector<std::vector<std::string>> HpsArchitecture::blocks() const {
  return backbone_block_prefixes(*backbone_, "backbone.");
}

std::string HpsArchitecture::describe() const {
  return "hps: one backbone shared by " + std::to_string(tasks_) + " task(s)";
}

Registry<ArchitectureFactory>& architecture_registry() {
  static Registry<ArchitectureFactory> r = [] {
    Registry<ArchitectureFactory> reg("architecture");
    register_builtin_architectures(reg);
    return reg;
  }();
  return r;
}

}  // namespace mtl
