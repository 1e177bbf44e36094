#include "mtl/model/expert_architectures.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>


#include "mtl/config/config_node.h"
#include "mtl/core/error.h"

namespace mtl {

namespace {

using ModulePtr = std::shared_ptr<torch::nn::Module>;

constexpr int64_t kMaxExperts = 256;

// What a level reads: the raw inputs (level 0) or the level below's shared and per-task features.
struct LevelIn {
  const TensorMap* raw = nullptr;
  at::Tensor gate_raw;  // level 0 with gate_input: input: the flattened raw input [B, F]
  at::Tensor shared;
  std::vector<at::Tensor> task;
};

struct LevelOut {
  at::Tensor shared_flat;         // the shared experts' outputs [B, S x D] (every task's mixture reads them)
  std::vector<at::Tensor> task;   // per task: its gate's mixture [B, D]
  at::Tensor shared;              // the shared gate's mixture [B, D], below the last level
  std::vector<at::Tensor> gates;  // per task: its gate's weights [B, S + K]
  std::vector<at::Tensor> regularizers;  // per task: its gate's regulariser (dselect_k, training), else undefined
};

// Softmax gate weights [B, E] over `stack` [B, E, D] -> the mixture [B, D].
at::Tensor mix(const at::Tensor& logits, const at::Tensor& stack, double temperature, at::Tensor& weights) {
  weights = at::softmax(logits / temperature, 1);
  return at::bmm(weights.unsqueeze(1), stack).squeeze(1);
}

int64_t code_bits(int64_t experts) {
  int64_t m = 0;
  while ((int64_t{1} << m) < experts) ++m;
  return std::max<int64_t>(m, 1);
}

}  // namespace

DSelectGateImpl::DSelectGateImpl(int64_t in, int64_t experts, int64_t k, double gamma, double entropy)
    : experts_(experts), k_(k), bits_(code_bits(experts)), gamma_(gamma), entropy_(entropy) {
  TORCH_CHECK(experts >= 1 && k >= 1 && gamma > 0.0, "dselect_k gate: experts, k and gamma must be > 0");
  z = register_module("z", torch::nn::Linear(in, k * bits_));
  w = register_module("w", torch::nn::Linear(in, k));
  const int64_t codes = int64_t{1} << bits_;
  codes_ = at::empty({codes, bits_}, at::kBool);
  for (int64_t c = 0; c < codes; ++c)
    for (int64_t j = 0; j < bits_; ++j) codes_[c][j] = bool((c >> (bits_ - 1 - j)) & 1);
}

at::Tensor DSelectGateImpl::smooth_step(const at::Tensor& t) const {
  const double g = gamma_;
  at::Tensor cubic = t.pow(3) * (-2.0 / (g * g * g)) + t * (1.5 / g) + 0.5;
  return at::where(t <= -g / 2, at::zeros_like(t), at::where(t >= g / 2, at::ones_like(t), cubic));
}

at::Tensor DSelectGateImpl::forward(const at::Tensor& x, double temperature, at::Tensor* regularizer) {
  const int64_t B = x.size(0), codes = codes_.size(0);
  // Selector i's weight on code c: the product over c's bits of s(z_ij) (bit 1) or 1 - s(z_ij) (bit 0); these
  // sum to 1 over the 2^m codes. Codes past the last expert count for expert c - E.
  at::Tensor s = smooth_step(z->forward(x)).view({B, k_, 1, bits_});
  at::Tensor r = at::where(codes_.view({1, 1, codes, bits_}), s, 1 - s).prod(3);  // [B, k, 2^m]
  if (codes != experts_) {
    const int64_t extra = codes - experts_;
    at::Tensor low = r.narrow(2, 0, extra) + r.narrow(2, experts_, extra);
    r = at::cat({low, r.narrow(2, extra, experts_ - extra)}, 2);  // [B, k, E]
  }
  at::Tensor alpha = at::softmax(w->forward(x) / temperature, 1);  // [B, k]
  at::Tensor weights = at::bmm(alpha.unsqueeze(1), r).squeeze(1);  // [B, E]
  if (regularizer && is_training()) *regularizer = -(r * (r + 1e-6).log()).sum(2).mean() * entropy_;
  return weights;
}

void DSelectGateImpl::reset(at::Generator& gen) {
  torch::NoGradGuard no_grad;
  const double zr = gamma_ / 100;  // every selector starts in the smooth region, near an even split
  z->weight.uniform_(-zr, zr, gen);
  z->bias.uniform_(-zr, zr, gen);
  w->weight.uniform_(-0.05, 0.05, gen);
  w->bias.uniform_(-0.05, 0.05, gen);
}

int64_t DSelectGateImpl::nonzero_bound() const { return std::min(k_, experts_); }

namespace {

// One level: shared experts, each task's experts, one gate per task and, below the last level, a shared gate.
class ExtractionLevelImpl : public torch::nn::Module {
 public:
  ExtractionLevelImpl(std::vector<ModulePtr> shared, std::vector<std::vector<ModulePtr>> task_experts,
                      const std::vector<std::string>& tasks, int64_t gate_in, bool shared_gate,
                      const GatedExpertsOptions& o)
      : shared_(std::move(shared)), task_(std::move(task_experts)) {
    torch::nn::ModuleList list;
    for (auto& e : shared_) list->push_back(e);
    register_module("shared", list);
    const int64_t S = static_cast<int64_t>(shared_.size()), K = static_cast<int64_t>(task_[0].size());
    if (K > 0) {
      std::vector<std::pair<std::string, ModulePtr>> named;
      for (size_t t = 0; t < tasks.size(); ++t) {
        torch::nn::ModuleList own;
        for (auto& e : task_[t]) own->push_back(e);
        named.emplace_back(tasks[t], own.ptr());
      }
      register_module("tasks", torch::nn::ModuleDict(named));
    }
    std::vector<std::pair<std::string, ModulePtr>> gates;
    for (const auto& name : tasks) {
      if (o.gate == "dselect")
        gates_.push_back(DSelectGate(gate_in, S + K, o.k, o.gamma, o.entropy).ptr());
      else
        gates_.push_back(torch::nn::Linear(gate_in, S + K).ptr());
      gates.emplace_back(name, gates_.back());
    }
    register_module("gates", torch::nn::ModuleDict(gates));
    if (shared_gate)
      shared_gate_ = register_module("shared_gate",
                                     torch::nn::Linear(gate_in, S + K * static_cast<int64_t>(tasks.size())));
  }

  // The shared experts' outputs go through one [B, S x D] tensor (the representation) on every task's path.
  LevelOut forward(const LevelIn& in, bool experts_gate_input, double temperature) {
    const size_t T = task_.size();
    at::Tensor shared_stack = at::stack(run(shared_, in, in.shared), 1);  // [B, S, D]
    LevelOut out;
    out.shared_flat = shared_stack.reshape({shared_stack.size(0), -1});
    shared_stack = out.shared_flat.view(shared_stack.sizes());
    std::vector<at::Tensor> everything{shared_stack};
    out.gates.resize(T);
    out.regularizers.resize(T);
    for (size_t t = 0; t < T; ++t) {
      at::Tensor stack = shared_stack;
      if (!task_[t].empty()) {
        at::Tensor own = at::stack(run(task_[t], in, in.raw ? at::Tensor() : in.task[t]), 1);
        everything.push_back(own);
        stack = at::cat({shared_stack, own}, 1);
      }
      const at::Tensor gate_in = in.raw ? (experts_gate_input ? stack.mean(1) : in.gate_raw) : in.task[t];
      out.task.push_back(gate_mix(t, gate_in, stack, temperature, out.gates[t], out.regularizers[t]));
    }
    if (!shared_gate_.is_empty()) {
      at::Tensor stack = at::cat(everything, 1);
      const at::Tensor gate_in = in.raw ? (experts_gate_input ? stack.mean(1) : in.gate_raw) : in.shared;
      at::Tensor unused;
      out.shared = mix(shared_gate_->forward(gate_in), stack, temperature, unused);
    }
    return out;
  }

  const std::vector<ModulePtr>& shared_experts() const { return shared_; }
  const std::vector<ModulePtr>& task_experts(size_t t) const { return task_[t]; }
  const ModulePtr& gate(size_t t) const { return gates_[t]; }
  torch::nn::Linear shared_gate() const { return shared_gate_; }

 private:
  // Level 0 experts are backbones over the raw inputs; later levels' are Linear + ReLU over `x`.
  static std::vector<at::Tensor> run(const std::vector<ModulePtr>& experts, const LevelIn& in, const at::Tensor& x) {
    std::vector<at::Tensor> out;
    for (const auto& e : experts) {
      if (in.raw)
        out.push_back(std::static_pointer_cast<BackboneImpl>(e)->forward(*in.raw));
      else
        out.push_back(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(e)->forward(x));
    }
    return out;
  }

  // Task t's gate: softmax over a Linear's logits, or a DSelect-k gate (weights and regulariser).
  at::Tensor gate_mix(size_t t, const at::Tensor& x, const at::Tensor& stack, double temperature,
                      at::Tensor& weights, at::Tensor& regularizer) {
    if (auto* d = dynamic_cast<DSelectGateImpl*>(gates_[t].get())) {
      weights = d->forward(x, temperature, &regularizer);
      return at::bmm(weights.unsqueeze(1), stack).squeeze(1);
    }
    return mix(dynamic_cast<torch::nn::LinearImpl&>(*gates_[t]).forward(x), stack, temperature, weights);
  }

  std::vector<ModulePtr> shared_;
  std::vector<std::vector<ModulePtr>> task_;  // [task][expert]
  std::vector<ModulePtr> gates_;
  torch::nn::Linear shared_gate_{nullptr};
};
TORCH_MODULE(ExtractionLevel);

class GatedExperts : public Architecture {
 public:
  GatedExperts(GatedExpertsOptions o, std::vector<Backbone> experts, std::vector<std::string> tasks,
               std::string input_name, int64_t input_features)
      : o_(std::move(o)), tasks_(std::move(tasks)), input_name_(std::move(input_name)) {
    const size_t T = tasks_.size();
    const auto S = static_cast<size_t>(o_.shared_experts), K = static_cast<size_t>(o_.task_experts);
    TORCH_CHECK(experts.size() == S + T * K, "gated experts: expected ", S + T * K, " level-1 experts, got ",
                experts.size());
    TORCH_CHECK(T > 0 && S > 0 && o_.levels > 0, "gated experts: tasks, shared experts and levels must be > 0");
    dim_ = experts[0]->output_dim();
    for (const auto& e : experts)
      TORCH_CHECK(e->output_dim() == dim_, "gated experts: every expert must give ", dim_, " features");
    expert_type_ = o_.expert.empty() ? experts[0]->name() : o_.expert;
    for (int64_t l = 0; l < o_.levels; ++l) {
      std::vector<ModulePtr> shared;
      std::vector<std::vector<ModulePtr>> own(T);
      size_t next = 0;
      auto expert = [&]() -> ModulePtr {
        if (l == 0) return experts[next++];
        return torch::nn::Sequential(torch::nn::Linear(dim_, dim_), torch::nn::ReLU()).ptr();
      };
      for (size_t i = 0; i < S; ++i) shared.push_back(expert());
      for (size_t t = 0; t < T; ++t)
        for (size_t i = 0; i < K; ++i) own[t].push_back(expert());
      const int64_t gate_in = l > 0 ? dim_ : o_.gate_input == "input" ? input_features : dim_;
      levels_.emplace_back(shared, own, tasks_, gate_in, /*shared_gate=*/l + 1 < o_.levels, o_);
      list_->push_back(levels_.back());
    }
  }

  std::string name() const override { return o_.type; }
  NamedModules modules() const override { return {{"levels", list_.ptr()}}; }
  std::vector<int64_t> gate_sizes() const override {
    return std::vector<int64_t>(tasks_.size(), o_.shared_experts + o_.task_experts);
  }
  int64_t output_dim() const override { return dim_; }

  std::string no_representation_reason() const override {
    if (o_.levels == 1) return "";
    return "model.architecture ple with levels >= 2 has no shared representation that every task's path passes "
           "through (lower levels' task experts feed the shared gate)";
  }

  TrunkOutput forward(const TensorMap& inputs) override {
    LevelIn in;
    in.raw = &inputs;
    if (o_.gate_input == "input") {
      auto it = inputs.find(input_name_);
      TORCH_CHECK(it != inputs.end(), "gated experts: the batch has no input '", input_name_, "' for the gates");
      in.gate_raw = it->second.flatten(1).to(levels_[0]->gate(0)->parameters().front().scalar_type());
    }
    TrunkOutput result;
    for (size_t l = 0; l < levels_.size(); ++l) {
      LevelOut out = levels_[l]->forward(in, o_.gate_input == "experts", o_.temperature);
      if (l == 0 && levels_.size() == 1) result.shared = out.shared_flat;
      if (l + 1 == levels_.size()) {
        result.task = std::move(out.task);
        result.gates = std::move(out.gates);
        result.regularizers = std::move(out.regularizers);
        break;
      }
      in = LevelIn{};
      in.shared = out.shared;
      in.task = std::move(out.task);
    }
    return result;
  }

  std::vector<at::Tensor> task_parameters(size_t t) const override {
    std::vector<at::Tensor> out;
    auto add = [&](const torch::nn::Module& m) {
      for (const auto& p : m.parameters()) out.push_back(p);
    };
    const ExtractionLevel& last = levels_.back();
    for (const auto& e : last->task_experts(t)) add(*e);
    add(*last->gate(t));
    if (levels_.size() >= 2) add(*levels_[levels_.size() - 2]->gate(t));
    return out;
  }

  std::vector<std::vector<std::string>> blocks() const override {
    std::vector<std::vector<std::string>> out;
    auto merge = [&](const ModulePtr& e, const std::string& prefix) {
      auto blocks = backbone_block_prefixes(*std::static_pointer_cast<BackboneImpl>(e), prefix);
      if (out.size() < blocks.size()) out.resize(blocks.size());
      for (size_t b = 0; b < blocks.size(); ++b) out[b].insert(out[b].end(), blocks[b].begin(), blocks[b].end());
    };
    const ExtractionLevel& first = levels_[0];
    for (size_t i = 0; i < first->shared_experts().size(); ++i)
      merge(first->shared_experts()[i], "levels.0.shared." + std::to_string(i) + ".");
    for (size_t t = 0; t < tasks_.size(); ++t)
      for (size_t i = 0; i < first->task_experts(t).size(); ++i)
        merge(first->task_experts(t)[i], "levels.0.tasks." + tasks_[t] + "." + std::to_string(i) + ".");
    for (size_t l = 1; l < levels_.size(); ++l) out.push_back({"levels." + std::to_string(l)});
    return out;
  }

  void reset_parameters(at::Generator& gen) override {
    for (size_t l = 0; l < levels_.size(); ++l) {
      auto reset = [&](const ModulePtr& m) {
        if (l == 0)
          std::static_pointer_cast<BackboneImpl>(m)->reset_parameters(gen);
        else
          reset_module_parameters(*m, gen);
      };
      for (const auto& e : levels_[l]->shared_experts()) reset(e);
      for (size_t t = 0; t < tasks_.size(); ++t)
        for (const auto& e : levels_[l]->task_experts(t)) reset(e);
      for (size_t t = 0; t < tasks_.size(); ++t) {
        if (auto* d = dynamic_cast<DSelectGateImpl*>(levels_[l]->gate(t).get()))
          d->reset(gen);
        else
          reset_module_parameters(*levels_[l]->gate(t), gen);
      }
      if (!levels_[l]->shared_gate().is_empty()) reset_module_parameters(*levels_[l]->shared_gate(), gen);
    }
  }

  std::string describe() const override {
    std::string s = o_.type + ": ";
    if (o_.levels > 1) s += std::to_string(o_.levels) + " levels of ";
    s += std::to_string(o_.shared_experts) + " shared expert(s)";
    if (o_.task_experts > 0) s += " + " + std::to_string(o_.task_experts) + " per task";
    s += " (" + expert_type_ + ", " + std::to_string(dim_) + " features), " + std::to_string(tasks_.size()) +
         " gate(s) on the " + (o_.gate_input == "input" ? "input '" + input_name_ + "'" : std::string("experts"));
    if (o_.gate == "dselect")
      s += ", DSelect-k gates choosing " + std::to_string(o_.k) + " (gamma " + short_number(o_.gamma) +
           ", entropy " + short_number(o_.entropy) + ")";
    if (o_.temperature != 1.0) s += ", temperature " + short_number(o_.temperature);
    return s;
  }

 private:
  GatedExpertsOptions o_;
  std::vector<std::string> tasks_;
  std::string input_name_;
  int64_t dim_ = 0;
  std::string expert_type_;
  torch::nn::ModuleList list_;
  std::vector<ExtractionLevel> levels_;
};

// The options every expert architecture shares, then the experts themselves.
ArchitecturePtr build(GatedExpertsOptions o, const ConfigNode& n, const ArchitectureContext& ctx) {
  const DatasetSchema& schema = ctx.schema;
  const bool one_dense = schema.inputs.size() == 1 && schema.inputs[0].kind == InputKind::kDense;
  o.expert = ctx.backbone.type();
  o.gate_input = n.choice("gate_input", one_dense ? "input" : "experts", {"input", "experts"});
  o.temperature = n.get<double>("temperature", 1.0);
  n.check(o.temperature > 0.0, "temperature", "expected a number > 0, got " + short_number(o.temperature));
  const int64_t T = static_cast<int64_t>(ctx.tasks.size());
  const int64_t total = o.shared_experts + T * o.task_experts;
  n.check(total <= kMaxExperts, "",
          "expected at most " + std::to_string(kMaxExperts) + " experts per level, got " + std::to_string(total));
  std::string input_name;
  int64_t features = 0;
  if (o.gate_input == "input") {
    n.check(schema.inputs.size() == 1 || ctx.backbone.has("input"), "gate_input",
            "the dataset has several inputs; gate_input: input needs the backbone's 'input' (or use gate_input: "
            "experts)");
    const InputInfo& in = select_input(ctx.backbone, schema);
    n.check(in.kind == InputKind::kDense, "gate_input",
            "gates cannot read the token ids of input '" + in.name + "'; use gate_input: experts");
    input_name = in.name;
    features = 1;
    for (int64_t d : in.shape) features *= d;
  }
  std::vector<Backbone> experts;
  for (int64_t i = 0; i < total; ++i) experts.push_back(ctx.make_backbone(ctx.backbone, schema));
  return make_gated_experts(o, std::move(experts), ctx.tasks, input_name, features);
}

int64_t count(const ConfigNode& n, const std::string& key, int64_t fallback, int64_t lo) {
  const int64_t v = n.get<int64_t>(key, fallback);
  n.check(v >= lo, key, "expected an integer >= " + std::to_string(lo) + ", got " + std::to_string(v));
  return v;
}

}  // namespace

ArchitecturePtr make_gated_experts(const GatedExpertsOptions& options, std::vector<Backbone> experts,
                                   std::vector<std::string> tasks, const std::string& input_name,
                                   int64_t input_features) {
  return std::make_shared<GatedExperts>(options, std::move(experts), std::move(tasks), input_name, input_features);
}

ArchitecturePtr make_mmoe(const ConfigNode& n, const ArchitectureContext& ctx) {
  GatedExpertsOptions o;
  o.type = "mmoe";
  o.shared_experts = count(n, "experts", 3, 1);
  return build(o, n, ctx);
}

// cgc's options (ple: each level's).
GatedExpertsOptions shared_and_task_experts(const ConfigNode& n, const std::string& type) {
  GatedExpertsOptions o;
  o.type = type;
  o.shared_experts = count(n, "shared_experts", 2, 1);
  o.task_experts = count(n, "task_experts", 1, 1);
  return o;
}

ArchitecturePtr make_cgc(const ConfigNode& n, const ArchitectureContext& ctx) {
  return build(shared_and_task_experts(n, "cgc"), n, ctx);
}

ArchitecturePtr make_dselect_k(const ConfigNode& n, const ArchitectureContext& ctx) {
  GatedExpertsOptions o;
  o.type = "dselect_k";
  o.gate = "dselect";
  o.shared_experts = count(n, "experts", 4, 1);
  o.k = count(n, "k", 2, 1);
  n.check(o.k <= o.shared_experts, "k",
          "expected at most experts (" + std::to_string(o.shared_experts) + ") experts chosen, got " +
              std::to_string(o.k));
  o.gamma = n.get<double>("gamma", 1.0);
  n.check(o.gamma > 0.0, "gamma", "expected a number > 0, got " + short_number(o.gamma));
  o.entropy = n.get<double>("entropy", 1e-3);
  n.check(o.entropy >= 0.0, "entropy", "expected a number >= 0, got " + short_number(o.entropy));
  return build(o, n, ctx);
}

ArchitecturePtr make_ple(const ConfigNode& n, const ArchitectureContext& ctx) {
  const int64_t levels = count(n, "levels", 2, 1);
  n.check(levels <= 16, "levels", "expected at most 16 levels, got " + std::to_string(levels));
  GatedExpertsOptions o = shared_and_task_experts(n, "ple");
  o.levels = levels;
  return build(o, n, ctx);
}

}  // namespace mtl
