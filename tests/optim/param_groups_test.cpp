// Parameter groups: assignment by pattern, per-group rates and weight decay (checked against one SGD update
// computed by hand), schedules per group, explicit penalties, clipping and max-norm constraints.
#include "mtl/optim/param_groups.h"

#include <torch/torch.h>

#include "mtl/run/assembler.h"
#include "mtl/engine/parallel_engine.h"
#include "random_batch.h"
#include "test_util.h"

namespace {

const char* kBase = R"(data: {type: multi_fashion, train_size: 100, test_size: 100}
model:
  backbone: {type: lenet}
tasks:
  left: {label: left, head: {hidden: [16]}}
  right: {label: right}
trainer: {threads: 1}
)";

mtl::Run make(const std::string& extra, const std::vector<std::string>& sets = {}) {
  return mtl::assemble(mtl::Config::from_string(std::string(kBase) + extra, "test.yaml", sets));
}

mtl::ParamGroups groups_of(mtl::Run& ex) { return mtl::build_param_groups(ex.config.optimizer, ex.config.scheduler, *ex.model, *ex.weighting); }

const mtl::ResolvedParamGroup& group(const mtl::ParamGroups& g, const std::string& name) {
  for (const auto& x : g.groups())
    if (x.name == name) return x;
  throw std::runtime_error("no group " + name);
}

// Random gradients on every trainable parameter.
void random_grads(mtl::Run& ex, double scale = 1.0) {
  for (auto& p : ex.model->parameters())
    if (p.requires_grad()) p.mutable_grad() = torch::randn_like(p) * scale;
}

mtl::Batch random_batch(int64_t n) { return mtl_test::random_multi_fashion_batch(n); }

}  // namespace

TEST(ParamGroups, PatternsAssignEveryParameterToTheFirstMatchingGroup) {
  mtl::Run ex = make(R"(optimizer:
  type: sgd
  lr: 0.1
  weight_decay: 0.01
  backbone_lr_scale: 0.5
  groups:
    - {name: left_head, params: [heads.left], lr: 0.3}
    - {name: convs, params: ['backbone.conv*'], lr_scale: 0.2, weight_decay: 0.0}
)");
  mtl::ParamGroups g = groups_of(ex);
  ASSERT_EQ(g.groups().size(), 4u);
  EXPECT_EQ(g.groups()[0].name, "left_head");
  EXPECT_EQ(g.groups()[1].name, "convs");
  EXPECT_EQ(g.groups()[2].name, "backbone");
  EXPECT_EQ(g.groups()[3].name, "default");
  EXPECT_DOUBLE_EQ(group(g, "left_head").lr, 0.3);
  EXPECT_DOUBLE_EQ(group(g, "convs").lr, 0.1 * 0.2);
  EXPECT_DOUBLE_EQ(group(g, "backbone").lr, 0.05);
  EXPECT_DOUBLE_EQ(group(g, "default").lr, 0.1);
  EXPECT_EQ(group(g, "convs").names,
            (std::vector<std::string>{"backbone.conv1.weight", "backbone.conv1.bias", "backbone.conv2.weight",
                                      "backbone.conv2.bias"}));
  EXPECT_EQ(group(g, "backbone").names, (std::vector<std::string>{"backbone.fc.weight", "backbone.fc.bias"}));
  for (const auto& n : group(g, "left_head").names) EXPECT_EQ(n.rfind("heads.left.", 0), 0u) << n;
  for (const auto& n : group(g, "default").names) EXPECT_EQ(n.rfind("heads.right.", 0), 0u) << n;
  size_t total = 0;
  for (const auto& x : g.groups()) total += x.params.size();
  EXPECT_EQ(total, ex.model->parameters().size());
  // LibTorch groups: weights with decay and biases without, per group; convs has no decay at all.
  auto& tg = g.optimizer().param_groups();
  ASSERT_EQ(tg.size(), 7u);
  auto sgd = [](torch::optim::OptimizerParamGroup& x) { return static_cast<torch::optim::SGDOptions&>(x.options()); };
  EXPECT_DOUBLE_EQ(sgd(tg[0]).weight_decay(), 0.01);  // left head weights
  EXPECT_DOUBLE_EQ(sgd(tg[1]).weight_decay(), 0.0);   // left head biases
  EXPECT_DOUBLE_EQ(sgd(tg[2]).weight_decay(), 0.0);   // convs (all)
  for (auto& x : tg[1].params()) EXPECT_EQ(x.dim(), 1);
  for (auto& x : tg[0].params()) EXPECT_GE(x.dim(), 2);
}

TEST(ParamGroups, OneSgdUpdateMatchesTheHandComputedOne) {
  mtl::Run ex = make(R"(optimizer:
  type: sgd
  lr: 0.1
  weight_decay: 0.05
  groups:
    - {name: trunk, params: [backbone], lr: 0.01}
)");
  mtl::ParamGroups g = groups_of(ex);
  g.set_step(0, 10, 100);
  torch::manual_seed(1);
  random_grads(ex);
  std::map<std::string, at::Tensor> before, grads;
  for (const auto& kv : ex.model->named_parameters()) {
    before[kv.key()] = kv.value().detach().clone();
    grads[kv.key()] = kv.value().grad().clone();
  }
  g.optimizer().step();
  for (const auto& kv : ex.model->named_parameters()) {
    const std::string& n = kv.key();
    double lr = n.rfind("backbone.", 0) == 0 ? 0.01 : 0.1;
    double wd = kv.value().dim() > 1 ? 0.05 : 0.0;  // no decay on biases by default
    at::Tensor expected = before[n] - lr * (grads[n] + wd * before[n]);
    EXPECT_TRUE(torch::allclose(kv.value(), expected, 1e-6, 1e-7)) << n;
  }
}

TEST(ParamGroups, DecayBiasAndNormPutsEveryParameterUnderDecay) {
  mtl::Run ex = make("optimizer: {type: adamw, weight_decay: 0.01, decay_bias_and_norm: true}\n");
  mtl::ParamGroups g = groups_of(ex);
  EXPECT_EQ(g.optimizer().param_groups().size(), 1u);
}

TEST(ParamGroups, LayerLrDecayScalesBlocksFromTheTop) {
  mtl::Run ex = make("optimizer: {type: sgd, lr: 1.0, layer_lr_decay: 0.5, backbone_lr_scale: 0.8}\n");
  mtl::ParamGroups g = groups_of(ex);
  // lenet blocks: conv1, conv2, fc (K = 3): block i gets 0.8 * 0.5^(3 - i).
  EXPECT_DOUBLE_EQ(group(g, "backbone.conv1").lr, 0.8 * 0.125);
  EXPECT_DOUBLE_EQ(group(g, "backbone.conv2").lr, 0.8 * 0.25);
  EXPECT_DOUBLE_EQ(group(g, "backbone.fc").lr, 0.8 * 0.5);
  EXPECT_DOUBLE_EQ(group(g, "default").lr, 1.0);
}

TEST(ParamGroups, EveryGroupFollowsItsSchedule) {
  mtl::Run ex = make(R"(optimizer:
  type: sgd
  lr: 0.1
  groups:
    - {name: trunk, params: [backbone], lr: 0.01}
    - {name: left, params: [heads.left], lr: 0.2, scheduler: {type: linear, warmup_steps: 0, min_lr: 0.0}}
scheduler: {type: cosine, warmup_steps: 10, min_lr: 0.001}
)");
  mtl::ParamGroups g = groups_of(ex);
  for (int64_t step : {0, 5, 10, 55, 99}) {
    double run_lr = g.set_step(step, 10, 100);
    EXPECT_DOUBLE_EQ(run_lr, mtl::scheduled_lr(ex.config.scheduler, 0.1, step, 10, 100));
    mtl::SchedulerOptions trunk = ex.config.scheduler;
    trunk.min_lr = 0.001 * 0.01 / 0.1;  // the run's floor, scaled with the rate
    double expect_trunk = mtl::scheduled_lr(trunk, 0.01, step, 10, 100);
    double expect_left = mtl::scheduled_lr(*ex.config.optimizer.groups[1].scheduler, 0.2, step, 10, 100);
    auto& tg = g.optimizer().param_groups();
    ASSERT_EQ(tg.size(), 3u);
    EXPECT_DOUBLE_EQ(tg[0].options().get_lr(), expect_trunk) << step;  // trunk
    EXPECT_DOUBLE_EQ(tg[1].options().get_lr(), expect_left) << step;   // left head (no decay: one group)
    EXPECT_DOUBLE_EQ(tg.back().options().get_lr(), run_lr) << step;    // default group
  }
  EXPECT_LT(g.optimizer().param_groups()[0].options().get_lr(), 0.01 * 0.51);  // warmed up, then decayed
}

TEST(ParamGroups, PenaltiesAddTheirGradients) {
  mtl::Run ex = make(R"(optimizer:
  type: sgd
  lr: 0.1
  groups:
    - {name: left, params: [heads.left], l1: 0.01, l2: 0.02}
)");
  mtl::ParamGroups g = groups_of(ex);
  torch::manual_seed(2);
  random_grads(ex);
  std::map<std::string, at::Tensor> grads;
  double expected_penalty = 0.0;
  for (const auto& kv : ex.model->named_parameters()) {
    grads[kv.key()] = kv.value().grad().clone();
    if (kv.key().rfind("heads.left.", 0) == 0)
      expected_penalty += 0.01 * kv.value().abs().sum().item<double>() + 0.02 * kv.value().pow(2).sum().item<double>();
  }
  double penalty = g.before_step();
  EXPECT_NEAR(penalty, expected_penalty, 1e-5 * expected_penalty);
  for (const auto& kv : ex.model->named_parameters()) {
    const at::Tensor& p = kv.value();
    bool left = kv.key().rfind("heads.left.", 0) == 0;
    // Reference: autograd of the penalty itself.
    at::Tensor leaf = p.detach().clone().requires_grad_(true);
    at::Tensor reg = 0.01 * leaf.abs().sum() + 0.02 * leaf.pow(2).sum();
    at::Tensor reg_grad = torch::autograd::grad({reg}, {leaf})[0];
    at::Tensor expected = left ? grads[kv.key()] + reg_grad : grads[kv.key()];
    EXPECT_TRUE(torch::allclose(p.grad(), expected, 1e-6, 1e-7)) << kv.key();
  }
}

TEST(ParamGroups, ClippingAndMaxNormHoldAfterEveryTrainingStep) {
  mtl::Run ex = make(R"(optimizer:
  type: sgd
  lr: 0.5
  momentum: 0.9
  clip_grad_norm: 0.5
  groups:
    - {name: trunk, params: [backbone], clip_grad_value: 0.01, max_norm: 0.3}
    - {name: left, params: [heads.left], clip_grad_norm: 0.1, max_norm: 0.2}
)");
  mtl::ParamGroups g = groups_of(ex);
  auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, *ex.weighting, mtl::EngineOptions{2, 1, 0});
  torch::manual_seed(3);
  auto norm_of = [](const std::vector<at::Tensor>& ps) {
    double s = 0;
    for (const auto& p : ps)
      if (p.grad().defined()) s += p.grad().pow(2).sum().item<double>();
    return std::sqrt(s);
  };
  for (int64_t step = 0; step < 5; ++step) {
    mtl::Batch batch = random_batch(16);
    mtl::StepContext ctx{step, 0, {}};
    g.set_step(step, 5, 5);
    for (auto& p : ex.model->parameters()) p.mutable_grad() = at::Tensor();
    engine->compute_gradients(batch, ctx);
    g.before_step();
    for (const auto& p : group(g, "trunk").params) EXPECT_LE(p.grad().abs().max().item<double>(), 0.01 + 1e-9);
    EXPECT_LE(norm_of(group(g, "left").params), 0.1 * (1 + 1e-5));
    EXPECT_LE(norm_of(ex.model->parameters()), 0.5 * (1 + 1e-5));
    g.optimizer().step();
    g.after_step();
    for (const auto& [name, limit] : std::vector<std::pair<std::string, double>>{{"trunk", 0.3}, {"left", 0.2}})
      for (const auto& p : group(g, name).params) {
        if (p.dim() < 2) continue;
        at::Tensor rows = p.reshape({p.size(0), -1}).norm(2, 1);
        EXPECT_LE(rows.max().item<double>(), limit * (1 + 1e-5)) << name << " step " << step;
      }
  }
}

TEST(ParamGroups, ConfigErrorsNameTheGroup) {
  EXPECT_MTL_ERROR(make("optimizer: {groups: [{name: x, params: [heads.nosuch]}]}\n"), "test.yaml:",
                   "parameter group 'x'", "heads.nosuch", "select no parameter");
  EXPECT_MTL_ERROR(make("optimizer: {groups: [{name: x, params: [heads.left], lr: 0.1, lr_scale: 2}]}\n"),
                   "optimizer.groups[0].lr_scale", "either lr or lr_scale");
  EXPECT_MTL_ERROR(make("optimizer: {groups: [{name: default, params: [heads.left]}]}\n"), "implicit groups");
  EXPECT_MTL_ERROR(make("optimizer: {groups: [{params: [heads.left], l2: -1}]}\n"), "optimizer.groups[0].l2");
  EXPECT_MTL_ERROR(make("optimizer: {type: sgd, l1: 0.1}\nengine: {mode: async}\n"), "engine.mode", "async");
}
