// model.architecture ltb (learning to branch): a fixed tree is the branched network it spells (independent
// networks when every node keeps its own column, shared stages when they all pick node 0); the Gumbel-softmax
// search mixes the parents' outputs (uniformly at a huge temperature, nearly one-hot at large logits), draws
// one choice per step that every shard shares, lets every task's loss reach the logits, and stops at
// fix_epoch, after which the logits no longer matter; text backbones; one-line errors.
#include <torch/torch.h>

#include "mtl/core/error.h"
#include "mtl/core/random.h"
#include "mtl/model/architecture.h"
#include "mtl/run/assembler.h"
#include "random_batch.h"
#include "test_util.h"

namespace {

const std::vector<std::string> kTasks{"left", "right"};

mtl::Run ltb_run(const std::string& options = "", const std::vector<std::string>& sets = {}) {
  std::string yaml = "data: {type: multi_fashion}\nmodel: {backbone: {type: lenet, channels: [4, 6], out_features: 12}, "
                     "architecture: {type: ltb" + options + "}}\ntasks:\n  left: {label: left}\n  right: {label: right}\n"
                     "trainer: {threads: 1}\n";
  return mtl::assemble(mtl::Config::from_string(yaml, "ltb.yaml", sets));
}

std::shared_ptr<mtl::BackboneImpl> copy(mtl::Run& ex, size_t t) {
  auto m = std::dynamic_pointer_cast<mtl::BackboneImpl>(ex.model->named_modules()["copies." + kTasks[t]]);
  EXPECT_TRUE(m);
  return m;
}

// Sets node t of every stage's logits: `own` at its own column's index, `other` elsewhere.
void set_logits(mtl::Run& ex, double own, double other) {
  torch::NoGradGuard no_grad;
  for (auto& kv : ex.model->named_parameters()) {
    if (kv.key().rfind("branching.alpha", 0) != 0) continue;
    const int64_t node = std::stoll(kv.key().substr(kv.key().rfind('_') + 1));
    kv.value().fill_(other);
    kv.value()[node].fill_(own);
  }
}

at::Tensor head_output(mtl::Run& ex, size_t t, const at::Tensor& f) { return ex.model->head(t)->forward(f); }

}  // namespace

TEST(Ltb, FixedTreesAreTheBranchedNetworksTheySpell) {
  mtl::Run ex = ltb_run();
  ex.model->eval();  // evaluation reads the argmax tree
  mtl::Batch b = mtl_test::random_multi_fashion_batch(4);
  set_logits(ex, 1.0, 0.0);  // every node keeps its own column: independent networks
  mtl::ModelOutput own = ex.model->forward(b.inputs);
  for (size_t t = 0; t < 2; ++t)
    EXPECT_TRUE(torch::equal(own.outputs[t], head_output(ex, t, copy(ex, t)->forward(b.inputs)))) << kTasks[t];
  EXPECT_NE(ex.model->architecture().describe().find("tree (argmax so far): left left>left>left; right right>right>right"),
            std::string::npos)
      << ex.model->architecture().describe();

  set_logits(ex, 0.0, 0.0);  // ties pick node 0: stages 0 and 1 of left's column shared, the last stage each task's
  mtl::ModelOutput shared = ex.model->forward(b.inputs);
  at::Tensor x = copy(ex, 0)->stage(1, b.inputs, copy(ex, 0)->stage(0, b.inputs, at::Tensor()));
  for (size_t t = 0; t < 2; ++t)
    EXPECT_TRUE(torch::equal(shared.outputs[t], head_output(ex, t, copy(ex, t)->stage(2, b.inputs, x)))) << kTasks[t];
  EXPECT_NE(ex.model->architecture().describe().find("left left>left>left; right left>left>right"), std::string::npos)
      << ex.model->architecture().describe();
}

TEST(Ltb, TheSearchMixesParentsByGumbelSoftmax) {
  mtl::Batch b = mtl_test::random_multi_fashion_batch(4);
  mtl::StepInfo step{5, 3, 0};
  {
    // A huge temperature makes every mixture uniform whatever the noise.
    mtl::Run ex = ltb_run(", temperature: 1.0e9");
    ex.model->train();
    mtl::ThreadGeneratorScope scope(step, 0);
    mtl::ModelOutput out = ex.model->forward(b.inputs);
    std::vector<at::Tensor> xs{copy(ex, 0)->stage(0, b.inputs, at::Tensor()), copy(ex, 1)->stage(0, b.inputs, at::Tensor())};
    for (int64_t i = 1; i < 3; ++i) {
      at::Tensor mean = (xs[0] + xs[1]) / 2.0;
      xs = {copy(ex, 0)->stage(i, b.inputs, mean), copy(ex, 1)->stage(i, b.inputs, mean)};
    }
    for (size_t t = 0; t < 2; ++t)
      EXPECT_TRUE(torch::allclose(out.outputs[t], head_output(ex, t, xs[t]), 1e-5, 1e-6)) << kTasks[t];
  }
  {
    // Large logits for the own column outweigh the noise: nearly independent networks.
    mtl::Run ex = ltb_run();
    ex.model->train();
    set_logits(ex, 40.0, 0.0);
    mtl::ThreadGeneratorScope scope(step, 0);
    mtl::ModelOutput out = ex.model->forward(b.inputs);
    for (size_t t = 0; t < 2; ++t)
      EXPECT_TRUE(torch::allclose(out.outputs[t], head_output(ex, t, copy(ex, t)->forward(b.inputs)), 1e-4, 1e-5));
  }
}

// One draw per step: two shards of a step mix alike, another step differs; every logit gets a gradient.
TEST(Ltb, EveryShardOfAStepSharesItsDraw) {
  mtl::Run ex = ltb_run();
  ex.model->train();
  set_logits(ex, 0.5, 0.0);
  mtl::Batch b = mtl_test::random_multi_fashion_batch(4);
  auto run = [&](int64_t step, uint64_t shard) {
    mtl::ThreadGeneratorScope scope(mtl::StepInfo{1, step, 0}, shard);
    return ex.model->forward(b.inputs).outputs[0];
  };
  EXPECT_TRUE(torch::equal(run(7, 0), run(7, 1)));
  EXPECT_FALSE(torch::allclose(run(7, 0), run(8, 0)));
  at::Tensor loss = run(7, 0).sum() + [&] {
    mtl::ThreadGeneratorScope scope(mtl::StepInfo{1, 7, 0}, 0);
    return ex.model->forward(b.inputs).outputs[1].sum();
  }();
  loss.backward();
  int logits = 0;
  for (auto& kv : ex.model->named_parameters())
    if (kv.key().rfind("branching.alpha", 0) == 0) {
      ++logits;
      ASSERT_TRUE(kv.value().grad().defined()) << kv.key();
      EXPECT_GT(kv.value().grad().abs().max().item<double>(), 0.0) << kv.key();
    }
  EXPECT_EQ(logits, 4);  // stages 1 and 2, two nodes each
}

// The first training forward pass of fix_epoch fixes each node's parent to its logits' argmax; afterwards the
// logits change nothing, get no gradient, and training runs the tree that evaluation runs.
TEST(Ltb, TheTreeIsFixedAtFixEpoch) {
  mtl::Run ex = ltb_run(", fix_epoch: 2");
  ex.model->train();
  mtl::Batch b = mtl_test::random_multi_fashion_batch(4);
  set_logits(ex, 0.0, 1.0);  // node t prefers the other column's node
  {
    mtl::ThreadGeneratorScope scope(mtl::StepInfo{0, 10, 1}, 0);
    ex.model->forward(b.inputs);
  }
  EXPECT_NE(ex.model->architecture().describe().find("(argmax so far)"), std::string::npos);
  at::Tensor fixed_out;
  {
    mtl::ThreadGeneratorScope scope(mtl::StepInfo{0, 11, 2}, 0);
    fixed_out = ex.model->forward(b.inputs).outputs[0];
  }
  const std::string tree = ex.model->architecture().describe();
  EXPECT_NE(tree.find("tree (fixed): left left>right>left; right right>left>right"), std::string::npos) << tree;
  set_logits(ex, 1.0, 0.0);  // would be independent networks, but the tree is fixed
  for (auto& p : ex.model->parameters()) p.mutable_grad() = at::Tensor();
  at::Tensor again;
  {
    mtl::ThreadGeneratorScope scope(mtl::StepInfo{0, 12, 2}, 1);
    again = ex.model->forward(b.inputs).outputs[0];
  }
  EXPECT_TRUE(torch::equal(fixed_out, again));
  again.sum().backward();
  for (auto& kv : ex.model->named_parameters())
    if (kv.key().rfind("branching.alpha", 0) == 0)
      EXPECT_FALSE(kv.value().grad().defined() && kv.value().grad().abs().max().item<double>() > 0) << kv.key();
  ex.model->eval();
  EXPECT_TRUE(torch::equal(ex.model->forward(b.inputs).outputs[0], fixed_out));
  EXPECT_EQ(ex.model->named_buffers()["branching.fixed"].item<int64_t>(), 1);
}

TEST(Ltb, OverATextEncoder) {
  mtl::DatasetSchema s;
  s.inputs.push_back({"text", {16}, mtl::InputKind::kTokens, 50});
  mtl::Config cfg = mtl::Config::from_string(
      "a: {type: ltb, hard: true}\nb: {type: transformer, dim: 16, heads: 2, layers: 2, ffn_dim: 32}\n", "t.yaml");
  mtl::ConfigNode a = cfg.root().component("a"), bb = cfg.root().component("b");
  auto m = mtl::architecture_registry().get(a.type())(
      a, mtl::ArchitectureContext{bb, mtl::backbone_registry().get(bb.type()), s, {"x", "y", "z"}});
  cfg.check_unused();
  mtl::TensorMap in{{"text", torch::randint(1, 50, {3, 16}, torch::kLong)}};
  for (bool training : {true, false}) {
    for (const auto& kv : m->modules()) kv.second->train(training);
    mtl::ThreadGeneratorScope scope(mtl::StepInfo{0, 1, 0}, 0);
    mtl::TrunkOutput o = m->forward(in);
    ASSERT_EQ(o.task.size(), 3u);
    for (const auto& f : o.task) EXPECT_EQ(f.sizes(), (std::vector<int64_t>{3, 16}));
    EXPECT_FALSE(o.shared.defined());
  }
  EXPECT_NE(m->describe().find("3 copies of the backbone's 4 stages"), std::string::npos) << m->describe();
}

TEST(Ltb, BadOptionsAreOneLineErrors) {
  auto expect = [](const std::string& options, const std::vector<std::string>& sets, const std::string& key,
                   const std::string& what) {
    try {
      ltb_run(options, sets);
      ADD_FAILURE() << "no error for " << options;
    } catch (const mtl::Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(key), std::string::npos) << m;
      EXPECT_NE(m.find(what), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  };
  expect(", fix_epoch: -1", {}, "model.architecture.fix_epoch", "expected an epoch >= 0");
  expect(", temperature: 0", {}, "model.architecture.temperature", "expected a number > 0");
  expect(", hrad: true", {}, "model.architecture.hrad", "did you mean 'hard'");
  expect("", {"model.backbone={type: mlp, hidden: []}"}, "model.architecture.type", "needs a backbone that runs in stages");
  expect("", {"model.backbone={type: mlp, hidden: [8]}"}, "model.architecture.type", "at least 2 stages");
  expect("", {"weighting.method=mgda_ub"}, "weighting.space", "no shared representation");
}
