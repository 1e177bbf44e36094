#include "mtl/model/layerwise_architectures.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <algorithm>
#include <set>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/core/name_pattern.h"
#include "mtl/core/random.h"

namespace mtl {

namespace {

using ModulePtr = std::shared_ptr<torch::nn::Module>;

// Parameters of `backbone` under the prefixes of its block `b`.
std::vector<at::Tensor> block_parameters(const Backbone& backbone, size_t b) {
  const auto blocks = backbone_block_prefixes(*backbone, "");
  std::vector<at::Tensor> out;
  if (b >= blocks.size()) return out;
  for (const auto& kv : backbone->named_parameters())
    if (name_matches_any(blocks[b], kv.key())) out.push_back(kv.value());
  return out;
}

// Removes the submodule at the dotted `path` from `root`'s registered modules: its parameters and buffers leave
// root's parameters(); the stages that would use it never run.
void prune(torch::nn::Module& root, const std::string& path) {
  torch::nn::Module* parent = &root;
  std::string rest = path;
  for (size_t dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
    auto children = parent->named_children();
    const std::string head = rest.substr(0, dot);
    TORCH_CHECK(children.contains(head), "branch: no submodule '", path, "' to prune");
    parent = children[head].get();
    rest = rest.substr(dot + 1);
  }
  parent->replace_module(rest, std::make_shared<torch::nn::Module>());
}

// Blocks [from, to) of `backbone` pruned.
void prune_blocks(const Backbone& backbone, int64_t from, int64_t to) {
  const auto blocks = backbone_block_prefixes(*backbone, "");
  for (int64_t b = from; b < to; ++b)
    for (const auto& prefix : blocks[static_cast<size_t>(b)]) prune(*backbone, prefix);
}

// Block b of several backbones, under their prefixes, as one block.
void merge_blocks(std::vector<std::vector<std::string>>& out, const Backbone& backbone, const std::string& prefix,
                  int64_t from, int64_t to) {
  const auto blocks = backbone_block_prefixes(*backbone, prefix);
  if (out.size() < static_cast<size_t>(to)) out.resize(static_cast<size_t>(to));
  for (int64_t b = from; b < to && b < static_cast<int64_t>(blocks.size()); ++b)
    out[static_cast<size_t>(b)].insert(out[static_cast<size_t>(b)].end(), blocks[static_cast<size_t>(b)].begin(),
                                       blocks[static_cast<size_t>(b)].end());
}

// One copy of the backbone per task (cross_stitch, ltb), by task name; checks that they are T copies of one
// backbone with at least `min_stages` stages and returns their stage count in `stages`.
ModulePtr copies_by_task(const std::vector<Backbone>& copies, const std::vector<std::string>& tasks,
                         int64_t min_stages, const std::string& arch, int64_t& stages) {
  TORCH_CHECK(!tasks.empty() && copies.size() == tasks.size(), arch, ": one backbone copy per task");
  stages = copies[0]->num_stages();
  TORCH_CHECK(stages >= min_stages, arch, ": the backbone must run in at least ", min_stages, " stage(s)");
  std::vector<std::pair<std::string, ModulePtr>> named;
  for (size_t t = 0; t < tasks.size(); ++t) {
    TORCH_CHECK(copies[t]->num_stages() == stages, arch, ": copies of one backbone");
    named.emplace_back(tasks[t], copies[t]);
  }
  return torch::nn::ModuleDict(named).ptr();
}

// Block i of every copy (registered as copies.<task>) as block i.
std::vector<std::vector<std::string>> copies_blocks(const std::vector<Backbone>& copies,
                                                    const std::vector<std::string>& tasks, int64_t stages) {
  std::vector<std::vector<std::string>> out;
  for (size_t t = 0; t < tasks.size(); ++t) merge_blocks(out, copies[t], "copies." + tasks[t] + ".", 0, stages);
  return out;
}

// sum_u w[row, u] xs[u]: what the node of `row` reads from the stage below.
at::Tensor mix(const std::vector<at::Tensor>& xs, const at::Tensor& w, size_t row) {
  const at::Tensor r = w[static_cast<int64_t>(row)];
  at::Tensor out = xs[0] * r[0];
  for (size_t u = 1; u < xs.size(); ++u) out = out + xs[u] * r[static_cast<int64_t>(u)];
  return out;
}

class CrossStitch : public Architecture {
 public:
  CrossStitch(std::vector<Backbone> copies, std::vector<std::string> tasks, double init_same)
      : copies_(std::move(copies)), tasks_(std::move(tasks)), init_same_(init_same) {
    copies_dict_ = copies_by_task(copies_, tasks_, 1, "cross_stitch", stages_);
    stitch_ = std::make_shared<torch::nn::Module>();
    const auto n = static_cast<int64_t>(tasks_.size());
    for (int64_t i = 0; i + 1 < stages_; ++i)
      alphas_.push_back(stitch_->register_parameter("alpha" + std::to_string(i), at::empty({n, n})));
    fill_alphas();
  }

  std::string name() const override { return "cross_stitch"; }
  bool keep_maps() override { return true; }  // forward() always fills them
  NamedModules modules() const override { return {{"copies", copies_dict_}, {"stitch", stitch_}}; }
  int64_t output_dim() const override { return copies_[0]->output_dim(); }
  std::string no_representation_reason() const override {
    return "model.architecture cross_stitch has no shared representation (each task has its own copy of the "
           "backbone, mixed after every stage)";
  }

  TrunkOutput forward(const TensorMap& inputs) override {
    const size_t T = tasks_.size();
    std::vector<at::Tensor> xs(T);
    TrunkOutput out;
    out.maps.resize(T);
    auto keep = [&] {
      for (size_t t = 0; t < T; ++t)
        if (xs[t].dim() == 4) out.maps[t].push_back(xs[t]);
    };
    for (size_t t = 0; t < T; ++t) xs[t] = copies_[t]->stage(0, inputs, at::Tensor());
    keep();
    for (int64_t i = 1; i < stages_; ++i) {
      const at::Tensor& a = alphas_[static_cast<size_t>(i - 1)];
      std::vector<at::Tensor> mixed(T);
      for (size_t t = 0; t < T; ++t) mixed[t] = mix(xs, a, t);
      for (size_t t = 0; t < T; ++t) xs[t] = copies_[t]->stage(i, inputs, mixed[t]);
      keep();
    }
    out.task = std::move(xs);
    return out;
  }

  std::vector<at::Tensor> task_parameters(size_t t) const override {
    return block_parameters(copies_[t], static_cast<size_t>(stages_ - 1));
  }

  std::vector<std::vector<std::string>> blocks() const override { return copies_blocks(copies_, tasks_, stages_); }

  void reset_parameters(at::Generator& gen) override {
    for (auto& c : copies_) c->reset_parameters(gen);
    fill_alphas();
  }

  std::string describe() const override {
    return "cross_stitch: " + std::to_string(tasks_.size()) + " copies of the backbone, " +
           std::to_string(alphas_.size()) + " stitch(es) of " + std::to_string(tasks_.size()) + "x" +
           std::to_string(tasks_.size()) + " (diagonal starts at " + std::to_string(init_same_) + ")";
  }

 private:
  // Identity-heavy start: init_same on the diagonal, the rest of each row split evenly (rows sum to 1).
  void fill_alphas() {
    torch::NoGradGuard no_grad;
    const auto T = static_cast<int64_t>(tasks_.size());
    const double same = T == 1 ? 1.0 : init_same_, other = T == 1 ? 0.0 : (1.0 - init_same_) / double(T - 1);
    for (auto& a : alphas_) {
      a.fill_(other);
      a.diagonal().fill_(same);
    }
  }

  std::vector<Backbone> copies_;
  std::vector<std::string> tasks_;
  double init_same_;
  int64_t stages_ = 0;
  ModulePtr copies_dict_, stitch_;
  std::vector<at::Tensor> alphas_;
};

class Branch : public Architecture {
 public:
  Branch(Backbone trunk, std::vector<Backbone> branches, int64_t at, std::vector<std::vector<size_t>> groups,
         std::vector<std::string> tasks)
      : trunk_(std::move(trunk)), branches_(std::move(branches)), at_(at), groups_(std::move(groups)),
        tasks_(std::move(tasks)) {
    stages_ = trunk_->num_stages();
    TORCH_CHECK(stages_ >= 1 && at_ >= 0 && at_ <= stages_, "branch: at must be in [0, stages]");
    TORCH_CHECK(at_ == stages_ || branches_.size() == groups_.size(), "branch: one backbone per group");
    group_of_.assign(tasks_.size(), groups_.size());
    for (size_t g = 0; g < groups_.size(); ++g)
      for (size_t t : groups_[g]) {
        TORCH_CHECK(t < tasks_.size() && group_of_[t] == groups_.size(), "branch: every task in one group");
        group_of_[t] = g;
      }
    for (size_t t = 0; t < tasks_.size(); ++t) TORCH_CHECK(group_of_[t] < groups_.size(), "branch: task in no group");
    prune_blocks(trunk_, at_, stages_);
    if (at_ == stages_) branches_.clear();
    std::vector<std::pair<std::string, ModulePtr>> named;
    for (size_t g = 0; g < branches_.size(); ++g) {
      prune_blocks(branches_[g], 0, at_);
      named.emplace_back("g" + std::to_string(g), branches_[g]);
    }
    if (!named.empty()) branches_dict_ = torch::nn::ModuleDict(named).ptr();
  }

  std::string name() const override { return "branch"; }
  bool keep_maps() override { return true; }  // forward() always fills them
  NamedModules modules() const override {
    NamedModules out;
    if (at_ > 0) out.emplace_back("trunk", trunk_);
    if (branches_dict_) out.emplace_back("branches", branches_dict_);
    return out;
  }
  int64_t output_dim() const override { return trunk_->output_dim(); }

  std::string no_representation_reason() const override {
    if (at_ == 0) return "model.architecture branch with at: 0 shares no stage, so it has no shared representation";
    if (at_ < stages_)
      for (const auto& g : groups_)
        if (g.size() > 1)
          return "model.architecture branch has a group of several tasks, whose shared branch comes after the "
                 "trunk's output";
    return "";
  }

  TrunkOutput forward(const TensorMap& inputs) override {
    TrunkOutput out;
    at::Tensor z;
    std::vector<at::Tensor> trunk_maps;
    for (int64_t i = 0; i < at_; ++i) {
      z = trunk_->stage(i, inputs, z);
      if (z.dim() == 4) trunk_maps.push_back(z);
    }
    if (at_ > 0 && no_representation_reason().empty()) {
      out.shared = z.reshape({z.size(0), -1});
      z = out.shared.view(z.sizes());
    }
    out.task.assign(tasks_.size(), z);
    out.maps.assign(tasks_.size(), trunk_maps);
    for (size_t g = 0; g < branches_.size(); ++g) {
      at::Tensor y = z;
      std::vector<at::Tensor> maps = trunk_maps;
      for (int64_t i = at_; i < stages_; ++i) {
        y = branches_[g]->stage(i, inputs, y);
        if (y.dim() == 4) maps.push_back(y);
      }
      for (size_t t : groups_[g]) {
        out.task[t] = y;
        out.maps[t] = maps;
      }
    }
    return out;
  }

  std::vector<at::Tensor> task_parameters(size_t t) const override {
    if (branches_.empty() || groups_[group_of_[t]].size() > 1) return {};
    return branches_[group_of_[t]]->parameters();
  }

  std::vector<std::vector<std::string>> blocks() const override {
    std::vector<std::vector<std::string>> out;
    merge_blocks(out, trunk_, "trunk.", 0, at_);
    for (size_t g = 0; g < branches_.size(); ++g) merge_blocks(out, branches_[g], "branches.g" + std::to_string(g) + ".", at_, stages_);
    return out;
  }

  void reset_parameters(at::Generator& gen) override {
    if (at_ > 0) trunk_->reset_parameters(gen);
    for (auto& b : branches_) b->reset_parameters(gen);
  }

  std::string describe() const override {
    std::string s = "branch: " + std::to_string(at_) + " of " + std::to_string(stages_) + " stages shared";
    if (!branches_.empty()) {
      s += ", then branches";
      for (const auto& g : groups_) {
        s += " [";
        for (size_t k = 0; k < g.size(); ++k) s += (k ? ", " : "") + tasks_[g[k]];
        s += "]";
      }
    }
    return s;
  }

 private:
  Backbone trunk_;
  std::vector<Backbone> branches_;
  int64_t at_, stages_ = 0;
  std::vector<std::vector<size_t>> groups_;
  std::vector<std::string> tasks_;
  std::vector<size_t> group_of_;
  ModulePtr branches_dict_;
};

// The channel axis of a stage's output: 1 for feature maps [B, C, H, W], the last for [B, D] and [B, L, D].
int64_t channel_axis(const at::Tensor& x) { return x.dim() == 4 ? 1 : x.dim() - 1; }

// `mlp` applied along x's channel axis.
at::Tensor along_channels(torch::nn::SequentialImpl& mlp, const at::Tensor& x) {
  const int64_t axis = channel_axis(x);
  if (axis == x.dim() - 1) return mlp.forward(x);
  return mlp.forward(x.movedim(axis, -1)).movedim(-1, axis);
}

class Mtan : public Architecture {
 public:
  Mtan(Backbone backbone, Backbone encoder, std::vector<int64_t> channels, std::vector<std::string> tasks)
      : backbone_(std::move(backbone)), encoder_(std::move(encoder)), channels_(std::move(channels)),
        tasks_(std::move(tasks)) {
    stages_ = backbone_->num_stages();
    TORCH_CHECK(stages_ >= 1 && static_cast<int64_t>(channels_.size()) == stages_,
                "mtan: one channel count per stage of the backbone");
    TORCH_CHECK(encoder_->num_stages() == stages_, "mtan: the encoder is a copy of the backbone");
    prune_blocks(encoder_, 0, 1);  // the attention encoders map task features of stage i - 1 to stage i's shape
    std::vector<std::pair<std::string, ModulePtr>> named;
    for (const auto& task : tasks_) {
      torch::nn::ModuleList list;
      std::vector<torch::nn::Sequential> mine;
      for (int64_t i = 0; i < stages_; ++i) {
        const int64_t c = channels_[static_cast<size_t>(i)], in = i == 0 ? c : 2 * c;
        mine.push_back(torch::nn::Sequential(torch::nn::Linear(in, c), torch::nn::ReLU(), torch::nn::Linear(c, c)));
        list->push_back(mine.back());
      }
      attention_.push_back(std::move(mine));
      named.emplace_back(task, list.ptr());
    }
    attention_dict_ = torch::nn::ModuleDict(named).ptr();
  }

  std::string name() const override { return "mtan"; }
  bool keep_maps() override { return true; }  // forward() always fills them
  NamedModules modules() const override {
    NamedModules out{{"backbone", backbone_}};
    if (stages_ > 1) out.emplace_back("encoder", encoder_);
    out.emplace_back("attention", attention_dict_);
    return out;
  }
  int64_t output_dim() const override { return backbone_->output_dim(); }
  std::string no_representation_reason() const override {
    return "model.architecture mtan has no shared representation (each task attends to every stage's features)";
  }

  TrunkOutput forward(const TensorMap& inputs) override {
    std::vector<at::Tensor> u;
    at::Tensor x;
    for (int64_t i = 0; i < stages_; ++i) u.push_back(x = backbone_->stage(i, inputs, x));
    TrunkOutput out;
    for (size_t t = 0; t < tasks_.size(); ++t) {
      at::Tensor h;
      std::vector<at::Tensor> maps;
      for (int64_t i = 0; i < stages_; ++i) {
        const at::Tensor& ui = u[static_cast<size_t>(i)];
        at::Tensor in = i == 0 ? ui : at::cat({ui, encoder_->stage(i, inputs, h)}, channel_axis(ui));
        h = at::sigmoid(along_channels(*attention_[t][static_cast<size_t>(i)], in)) * ui;
        if (h.dim() == 4) maps.push_back(h);
      }
      out.task.push_back(h);
      out.maps.push_back(std::move(maps));
    }
    return out;
  }

  std::vector<at::Tensor> task_parameters(size_t t) const override {
    std::vector<at::Tensor> out;
    for (const auto& m : attention_[t])
      for (const auto& p : m->parameters()) out.push_back(p);
    return out;
  }

  std::vector<std::vector<std::string>> blocks() const override {
    std::vector<std::vector<std::string>> out;
    merge_blocks(out, backbone_, "backbone.", 0, stages_);
    merge_blocks(out, encoder_, "encoder.", 1, stages_);
    for (const auto& task : tasks_)
      for (int64_t i = 0; i < stages_; ++i)
        out[static_cast<size_t>(i)].push_back("attention." + task + "." + std::to_string(i));
    return out;
  }

  void reset_parameters(at::Generator& gen) override {
    backbone_->reset_parameters(gen);
    if (stages_ > 1) encoder_->reset_parameters(gen);
    for (auto& per_task : attention_)
      for (auto& m : per_task) reset_module_parameters(*m, gen);
  }

  std::string describe() const override {
    std::string widths;
    for (int64_t c : channels_) widths += (widths.empty() ? "" : ", ") + std::to_string(c);
    return "mtan: a shared backbone, " + std::to_string(tasks_.size()) + " task attention module(s) on each of its " +
           std::to_string(stages_) + " stages (channels " + widths + "), shared attention encoders";
  }

 private:
  Backbone backbone_, encoder_;
  std::vector<int64_t> channels_;
  std::vector<std::string> tasks_;
  int64_t stages_ = 0;
  std::vector<std::vector<torch::nn::Sequential>> attention_;  // [task][stage]
  ModulePtr attention_dict_;
};

// Learning to branch: one copy of the backbone per task gives stage i its T nodes; node t of stage i >= 1
// reads one parent among stage i - 1's nodes, chosen by its logits alpha_{i,t} (one per parent, starting
// equal). In training before `fix_epoch` the choice is relaxed: node t reads sum_u w_u x_u with
// w = softmax((alpha_{i,t} + g) / temperature), g Gumbel noise drawn once per step (step_generator: the same in
// every shard); `hard` uses the one-hot argmax of w forward and w's gradient backward (straight-through). From
// the first training step of `fix_epoch` on, each node keeps the parent its logits favour then (buffers
// `parents`, `fixed`: saved with the run), and only the nodes on some task's path run. Evaluation before that
// uses the argmax tree of the logits so far.
class Ltb : public Architecture {
 public:
  Ltb(std::vector<Backbone> copies, std::vector<std::string> tasks, LtbOptions options)
      : copies_(std::move(copies)), tasks_(std::move(tasks)), options_(options) {
    const size_t T = tasks_.size();
    copies_dict_ = copies_by_task(copies_, tasks_, 2, "ltb", stages_);
    branching_ = std::make_shared<torch::nn::Module>();
    const auto n = static_cast<int64_t>(T);
    alphas_.resize(static_cast<size_t>(stages_));
    for (int64_t i = 1; i < stages_; ++i)
      for (size_t t = 0; t < T; ++t)
        alphas_[static_cast<size_t>(i)].push_back(
            branching_->register_parameter(alpha_name(i, t), at::zeros({n})));
    parents_ = branching_->register_buffer("parents", at::zeros({stages_ - 1, n}, at::kLong));
    fixed_ = branching_->register_buffer("fixed", at::zeros({1}, at::kLong));
  }

  std::string name() const override { return "ltb"; }
  bool keep_maps() override { return true; }  // forward() always fills them
  NamedModules modules() const override { return {{"copies", copies_dict_}, {"branching", branching_}}; }
  int64_t output_dim() const override { return copies_[0]->output_dim(); }
  std::string no_representation_reason() const override {
    return "model.architecture ltb has no shared representation (each task's path through the stages is chosen "
           "in training)";
  }

  TrunkOutput forward(const TensorMap& inputs) override {
    const bool training = copies_[0]->is_training();
    const StepInfo* step = current_step();
    if (training && !fixed() && step != nullptr && step->epoch >= options_.fix_epoch) fix();
    return training && !fixed() ? relaxed(inputs) : tree(inputs, parents());
  }

  std::vector<at::Tensor> task_parameters(size_t t) const override {
    std::vector<at::Tensor> out = block_parameters(copies_[t], static_cast<size_t>(stages_ - 1));
    out.push_back(alphas_[static_cast<size_t>(stages_ - 1)][t]);
    return out;
  }

  std::vector<std::vector<std::string>> blocks() const override {
    std::vector<std::vector<std::string>> out = copies_blocks(copies_, tasks_, stages_);
    for (int64_t i = 1; i < stages_; ++i)
      for (size_t t = 0; t < tasks_.size(); ++t)
        out[static_cast<size_t>(i)].push_back("branching." + alpha_name(i, t));
    return out;
  }

  void reset_parameters(at::Generator& gen) override {
    for (auto& c : copies_) c->reset_parameters(gen);
    torch::NoGradGuard no_grad;
    for (auto& stage : alphas_)
      for (auto& a : stage) a.zero_();
    parents_.zero_();
    fixed_.zero_();
  }

  std::string describe() const override {
    std::string s = "ltb: " + std::to_string(tasks_.size()) + " copies of the backbone's " + std::to_string(stages_) +
                    " stages, each node's parent chosen by Gumbel-softmax (temperature " +
                    short_number(options_.temperature) + (options_.hard ? ", hard" : "") + ") until epoch " +
                    std::to_string(options_.fix_epoch) + "; tree " + (fixed() ? "(fixed)" : "(argmax so far)") + ":";
    const std::vector<std::vector<int64_t>> p = parents();
    for (size_t t = 0; t < tasks_.size(); ++t) {
      std::vector<int64_t> path = path_of(p, t);
      s += (t ? "; " : " ") + tasks_[t] + " ";
      for (size_t i = 0; i < path.size(); ++i) s += (i ? ">" : "") + tasks_[static_cast<size_t>(path[i])];
    }
    return s;
  }

 private:
  static std::string alpha_name(int64_t stage, size_t t) { return "alpha" + std::to_string(stage) + "_" + std::to_string(t); }

  bool fixed() const { return fixed_.item<int64_t>() != 0; }

  // Fixes each node's parent to the argmax of its logits (ties: the lowest index).
  void fix() {
    torch::NoGradGuard no_grad;
    for (int64_t i = 1; i < stages_; ++i)
      for (size_t t = 0; t < tasks_.size(); ++t)
        parents_[i - 1][static_cast<int64_t>(t)].fill_(alphas_[static_cast<size_t>(i)][t].argmax());
    fixed_.fill_(1);
  }

  // parents[i][t]: the stage i - 1 node that node t of stage i reads (row 0 unused), fixed or argmax so far.
  std::vector<std::vector<int64_t>> parents() const {
    std::vector<std::vector<int64_t>> p(static_cast<size_t>(stages_), std::vector<int64_t>(tasks_.size(), 0));
    const bool is_fixed = fixed();
    for (int64_t i = 1; i < stages_; ++i)
      for (size_t t = 0; t < tasks_.size(); ++t)
        p[static_cast<size_t>(i)][t] = is_fixed ? parents_[i - 1][static_cast<int64_t>(t)].item<int64_t>()
                                                : alphas_[static_cast<size_t>(i)][t].argmax().item<int64_t>();
    return p;
  }

  // The nodes task t's features pass through, stage 0 first.
  std::vector<int64_t> path_of(const std::vector<std::vector<int64_t>>& p, size_t t) const {
    std::vector<int64_t> path(static_cast<size_t>(stages_));
    int64_t node = static_cast<int64_t>(t);
    for (int64_t i = stages_ - 1; i >= 0; --i) {
      path[static_cast<size_t>(i)] = node;
      node = p[static_cast<size_t>(i)][static_cast<size_t>(node)];
    }
    return path;
  }

  // The fixed tree: only the nodes on some task's path run, each once.
  TrunkOutput tree(const TensorMap& inputs, const std::vector<std::vector<int64_t>>& p) {
    const size_t T = tasks_.size(), S = static_cast<size_t>(stages_);
    std::vector<std::vector<int64_t>> paths;
    std::vector<std::vector<bool>> used(S, std::vector<bool>(T, false));
    for (size_t t = 0; t < T; ++t) {
      paths.push_back(path_of(p, t));
      for (size_t i = 0; i < S; ++i) used[i][static_cast<size_t>(paths[t][i])] = true;
    }
    std::vector<std::vector<at::Tensor>> x(S, std::vector<at::Tensor>(T));
    for (size_t i = 0; i < S; ++i)
      for (size_t k = 0; k < T; ++k)
        if (used[i][k])
          x[i][k] = copies_[k]->stage(static_cast<int64_t>(i), inputs,
                                      i == 0 ? at::Tensor() : x[i - 1][static_cast<size_t>(p[i][k])]);
    TrunkOutput out;
    out.maps.resize(T);
    for (size_t t = 0; t < T; ++t) {
      for (size_t i = 0; i < S; ++i) {
        const at::Tensor& y = x[i][static_cast<size_t>(paths[t][i])];
        if (y.dim() == 4) out.maps[t].push_back(y);
      }
      out.task.push_back(x[S - 1][t]);
    }
    return out;
  }

  // The search: every node of stage i >= 1 reads a Gumbel-softmax mixture of stage i - 1's nodes.
  TrunkOutput relaxed(const TensorMap& inputs) {
    const size_t T = tasks_.size();
    const auto n = static_cast<int64_t>(T);
    at::Generator gen = step_generator(0x4C5442);  // "LTB"
    std::vector<at::Tensor> xs(T);
    TrunkOutput out;
    out.maps.resize(T);
    auto keep = [&] {
      for (size_t t = 0; t < T; ++t)
        if (xs[t].dim() == 4) out.maps[t].push_back(xs[t]);
    };
    for (size_t t = 0; t < T; ++t) xs[t] = copies_[t]->stage(0, inputs, at::Tensor());
    keep();
    for (int64_t i = 1; i < stages_; ++i) {
      at::Tensor logits = at::stack(alphas_[static_cast<size_t>(i)]);  // [T nodes, T parents]
      at::Tensor gumbel;
      {
        torch::NoGradGuard no_grad;
        gumbel = -at::empty({n, n}, logits.options().requires_grad(false)).exponential_(1.0, gen).clamp_min(1e-20).log();
      }
      at::Tensor w = at::softmax((logits + gumbel) / options_.temperature, 1);
      if (options_.hard) {
        at::Tensor one_hot = at::zeros_like(w).scatter_(1, w.argmax(1, true), 1.0);
        w = one_hot - w.detach() + w;
      }
      std::vector<at::Tensor> next(T);
      for (size_t t = 0; t < T; ++t) next[t] = copies_[t]->stage(i, inputs, mix(xs, w, t));
      xs = std::move(next);
      keep();
    }
    out.task = std::move(xs);
    return out;
  }

  std::vector<Backbone> copies_;
  std::vector<std::string> tasks_;
  LtbOptions options_;
  int64_t stages_ = 0;
  ModulePtr copies_dict_, branching_;
  std::vector<std::vector<at::Tensor>> alphas_;  // [stage][node] logits over the previous stage's nodes
  at::Tensor parents_, fixed_;
};

// Example inputs for the schema (a batch of 2: zeros, token id 1), to read a backbone's stage widths.
// The channel count of each stage's output (see channel_axis), from a forward pass in eval mode.
std::vector<int64_t> stage_channels(BackboneImpl& backbone, const DatasetSchema& schema) {
  torch::NoGradGuard no_grad;
  const bool training = backbone.is_training();
  backbone.eval();
  const TensorMap inputs = example_inputs(schema);
  std::vector<int64_t> out;
  at::Tensor x;
  for (int64_t i = 0; i < backbone.num_stages(); ++i) {
    x = backbone.stage(i, inputs, x);
    out.push_back(x.size(channel_axis(x)));
  }
  backbone.train(training);
  return out;
}

// A backbone from model.backbone that runs in stages, else a one-line error at model.architecture.type.
Backbone staged_backbone(const ConfigNode& n, const ArchitectureContext& ctx, const std::string& arch) {
  Backbone b = ctx.make_backbone(ctx.backbone, ctx.schema);
  n.check(b->num_stages() >= 1, "type",
          arch + " needs a backbone that runs in stages (lenet, mlp with hidden layers, resnet, transformer); '" +
              ctx.backbone.type() + "' does not");
  return b;
}

}  // namespace

ArchitecturePtr make_cross_stitch_architecture(std::vector<Backbone> copies, std::vector<std::string> tasks,
                                               double init_same) {
  return std::make_shared<CrossStitch>(std::move(copies), std::move(tasks), init_same);
}

ArchitecturePtr make_branch_architecture(Backbone trunk, std::vector<Backbone> branches, int64_t at,
                                         std::vector<std::vector<size_t>> groups, std::vector<std::string> tasks) {
  return std::make_shared<Branch>(std::move(trunk), std::move(branches), at, std::move(groups), std::move(tasks));
}

ArchitecturePtr make_mtan_architecture(Backbone backbone, Backbone encoder, const DatasetSchema& schema,
                                       std::vector<std::string> tasks) {
  std::vector<int64_t> channels = stage_channels(*backbone, schema);
  return std::make_shared<Mtan>(std::move(backbone), std::move(encoder), std::move(channels), std::move(tasks));
}

ArchitecturePtr make_ltb_architecture(std::vector<Backbone> copies, std::vector<std::string> tasks,
                                      LtbOptions options) {
  return std::make_shared<Ltb>(std::move(copies), std::move(tasks), options);
}

ArchitecturePtr make_ltb(const ConfigNode& n, const ArchitectureContext& ctx) {
  LtbOptions o;
  o.fix_epoch = n.get<int64_t>("fix_epoch", o.fix_epoch);
  n.check(o.fix_epoch >= 0, "fix_epoch", "expected an epoch >= 0 (0-based), got " + std::to_string(o.fix_epoch));
  o.temperature = n.get<double>("temperature", o.temperature);
  n.check(o.temperature > 0.0, "temperature", "expected a number > 0, got " + short_number(o.temperature));
  o.hard = n.get<bool>("hard", o.hard);
  std::vector<Backbone> copies{staged_backbone(n, ctx, "ltb")};
  n.check(copies[0]->num_stages() >= 2, "type",
          "ltb needs a backbone that runs in at least 2 stages; '" + ctx.backbone.type() + "' runs in 1");
  for (size_t t = 1; t < ctx.tasks.size(); ++t) copies.push_back(ctx.make_backbone(ctx.backbone, ctx.schema));
  return make_ltb_architecture(std::move(copies), ctx.tasks, o);
}

ArchitecturePtr make_mtan(const ConfigNode& n, const ArchitectureContext& ctx) {
  Backbone backbone = staged_backbone(n, ctx, "mtan");
  return make_mtan_architecture(std::move(backbone), ctx.make_backbone(ctx.backbone, ctx.schema), ctx.schema,
                                ctx.tasks);
}

ArchitecturePtr make_cross_stitch(const ConfigNode& n, const ArchitectureContext& ctx) {
  const double same = n.get<double>("init_same", 0.9);
  n.check(same >= 0.0 && same <= 1.0, "init_same", "expected a value in [0, 1], got " + std::to_string(same));
  std::vector<Backbone> copies{staged_backbone(n, ctx, "cross_stitch")};
  for (size_t t = 1; t < ctx.tasks.size(); ++t) copies.push_back(ctx.make_backbone(ctx.backbone, ctx.schema));
  return make_cross_stitch_architecture(std::move(copies), ctx.tasks, same);
}

ArchitecturePtr make_branch(const ConfigNode& n, const ArchitectureContext& ctx) {
  Backbone trunk = staged_backbone(n, ctx, "branch");
  const int64_t K = trunk->num_stages();
  std::string names;
  for (const auto& block : backbone_block_prefixes(*trunk, ""))
    names += (names.empty() ? "" : ", ") + join(block, "+");
  const int64_t at = n.require<int64_t>("at");
  n.check(at >= 0 && at <= K, "at",
          "expected a stage count in [0, " + std::to_string(K) + "] (backbone '" + ctx.backbone.type() +
              "' runs in " + std::to_string(K) + " stages: " + names + "), got " + std::to_string(at));
  std::vector<std::vector<std::string>> named = n.get<std::vector<std::vector<std::string>>>("groups", {});
  std::vector<std::vector<size_t>> groups;
  if (named.empty())
    for (size_t t = 0; t < ctx.tasks.size(); ++t) groups.push_back({t});
  std::set<std::string> seen;
  for (const auto& g : named) {
    n.check(!g.empty(), "groups", "expected non-empty lists of task names");
    groups.emplace_back();
    for (const auto& task : g) {
      auto it = std::find(ctx.tasks.begin(), ctx.tasks.end(), task);
      if (it == ctx.tasks.end())
        n.fail("groups", "no task '" + task + "'" + did_you_mean(task, ctx.tasks) + "; tasks: " + join(ctx.tasks));
      n.check(seen.insert(task).second, "groups", "task '" + task + "' is in two groups");
      groups.back().push_back(static_cast<size_t>(it - ctx.tasks.begin()));
    }
  }
  for (const auto& task : ctx.tasks)
    n.check(named.empty() || seen.count(task) > 0, "groups", "task '" + task + "' is in no group");
  std::vector<Backbone> branches;
  if (at < K)
    for (size_t g = 0; g < groups.size(); ++g) branches.push_back(ctx.make_backbone(ctx.backbone, ctx.schema));
  return make_branch_architecture(std::move(trunk), std::move(branches), at, std::move(groups), ctx.tasks);
}

}  // namespace mtl
