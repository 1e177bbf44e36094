// model.architecture: mmoe, cgc, ple, dselect_k, cross_stitch, mtan, branch and ltb over vision and text backbones. Output shapes
// and gates; the split into shared and task parameters checked by autograd (no other task's loss reaches a
// task's parameters, at least two tasks' losses reach every shared one); the shared representation as a cut
// (every shared gradient flows through it); cross_stitch with identity mixing = independent networks; branch at
// the end = hard sharing and at 0 = independent networks; every weighting method training each architecture
// with 1 and 2 threads to the same result; bitwise resume; and one-line errors for bad options.
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "mtl/core/random.h"
#include "mtl/model/architecture.h"
#include "mtl/model/expert_architectures.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "mtl/weighting/weighting.h"
#include "random_batch.h"
#include "test_util.h"

namespace {

const std::vector<std::string> kArchitectures{"mmoe",         "cgc",
                                              "{type: ple, levels: 2}", "{type: ple, levels: 3}",
                                              "{type: dselect_k, experts: 3}", "cross_stitch", "mtan",
                                              "{type: branch, at: 1, groups: [[left, right]]}",
                                              "{type: branch, at: 2}", "{type: ltb, fix_epoch: 1}",
                                              "{type: ltb, fix_epoch: 2, hard: true}"};
const std::string kExpert = "{type: lenet, channels: [4, 6], out_features: 12}";

mtl::Run vision_run(const std::string& arch, const std::vector<std::string>& sets = {}) {
  std::string yaml = "data: {type: multi_fashion}\nmodel: {backbone: " + kExpert + ", architecture: " + arch +
                     "}\ntasks:\n  left: {label: left}\n  right: {label: right}\ntrainer: {threads: 1}\n";
  return mtl::assemble(mtl::Config::from_string(yaml, "a.yaml", sets));
}

int64_t numel(const std::vector<at::Tensor>& ts) {
  int64_t n = 0;
  for (const auto& t : ts) n += t.numel();
  return n;
}

}  // namespace

TEST(Architectures, ExpertOutputsGatesAndRepresentationOnImages) {
  struct Case {
    std::string arch;
    int64_t experts_mixed;  // per task gate
    int64_t representation;  // columns of the shared representation, 0 = none
  };
  for (const Case& c : {Case{"mmoe", 3, 3 * 12}, Case{"{type: mmoe, experts: 5}", 5, 5 * 12},
                        Case{"cgc", 3, 2 * 12}, Case{"{type: cgc, shared_experts: 1, task_experts: 2}", 3, 12},
                        Case{"{type: ple, levels: 2}", 3, 0}, Case{"{type: ple, levels: 1}", 3, 2 * 12},
                        Case{"dselect_k", 4, 4 * 12}, Case{"{type: dselect_k, experts: 5, k: 3}", 5, 5 * 12}}) {
    SCOPED_TRACE(c.arch);
    mtl::Run ex = vision_run(c.arch);
    mtl::Batch b = mtl_test::random_multi_fashion_batch(5);
    mtl::ModelOutput out = ex.model->forward(b.inputs);
    ASSERT_EQ(out.outputs.size(), 2u);
    for (const auto& o : out.outputs) EXPECT_EQ(o.sizes(), (std::vector<int64_t>{5, 10}));
    ASSERT_EQ(out.gates.size(), 2u);
    for (const auto& g : out.gates) {
      EXPECT_EQ(g.sizes(), (std::vector<int64_t>{5, c.experts_mixed}));
      EXPECT_TRUE(torch::allclose(g.sum(1), torch::ones({5}), 1e-6, 1e-6));
      EXPECT_GE(g.min().item<double>(), 0.0);
    }
    if (c.representation == 0)
      EXPECT_FALSE(out.features.defined());
    else
      EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{5, c.representation}));
    EXPECT_EQ(ex.model->architecture().output_dim(), 12);
  }
}

// A text encoder as the expert: gates on the experts (the input is token ids), pooled features per task.
TEST(Architectures, ExpertArchitecturesOverATextEncoder) {
  mtl::DatasetSchema s;
  s.inputs.push_back({"text", {16}, mtl::InputKind::kTokens, 50});
  for (const std::string arch : {"mmoe", "cgc", "{type: ple, levels: 2}", "dselect_k"}) {
    SCOPED_TRACE(arch);
    mtl::Config cfg = mtl::Config::from_string(
        "a: " + arch + "\nb: {type: transformer, dim: 16, heads: 2, layers: 1, ffn_dim: 32}\n", "t.yaml");
    mtl::ConfigNode a = cfg.root().component("a"), bb = cfg.root().component("b");
    mtl::ArchitecturePtr m = mtl::architecture_registry().get(a.type())(
        a, mtl::ArchitectureContext{bb, mtl::backbone_registry().get(bb.type()), s, {"x", "y", "z"}});
    cfg.check_unused();
    torch::manual_seed(1);
    mtl::TensorMap in{{"text", torch::randint(4, 50, {3, 16}, torch::kLong)}};
    mtl::TrunkOutput out = m->forward(in);
    ASSERT_EQ(out.task.size(), 3u);
    for (const auto& f : out.task) EXPECT_EQ(f.sizes(), (std::vector<int64_t>{3, 16}));
    for (const auto& g : out.gates) EXPECT_TRUE(torch::allclose(g.sum(1), torch::ones({3}), 1e-6, 1e-6));
    EXPECT_NE(m->describe().find("gate(s) on the experts"), std::string::npos) << m->describe();
  }
}

// Which parameters each task owns, by name, as the papers define them, and checked by autograd: no other task's
// loss reaches them; at least two tasks' losses reach every shared parameter. In each pattern, T stands for the
// task's name and G for its index.
TEST(Architectures, SharedAndTaskParametersAreWhatThePapersDefine) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"mmoe", "heads\\.T\\..*|levels\\.0\\.gates\\.T\\..*"},
      {"cgc", "heads\\.T\\..*|levels\\.0\\.(gates|tasks)\\.T\\..*"},
      {"{type: ple, levels: 2}", "heads\\.T\\..*|levels\\.1\\.(gates|tasks)\\.T\\..*|levels\\.0\\.gates\\.T\\..*"},
      {"{type: ple, levels: 3}", "heads\\.T\\..*|levels\\.2\\.(gates|tasks)\\.T\\..*|levels\\.1\\.gates\\.T\\..*"},
      {"{type: dselect_k, experts: 3}", "heads\\.T\\..*|levels\\.0\\.gates\\.T\\..*"},
      {"cross_stitch", "heads\\.T\\..*|copies\\.T\\.fc\\..*"},
      {"mtan", "heads\\.T\\..*|attention\\.T\\..*"},
      {"ltb", "heads\\.T\\..*|copies\\.T\\.fc\\..*|branching\\.alpha2_G"},
      {"{type: branch, at: 1}", "heads\\.T\\..*|branches\\.gG\\..*"},
      {"{type: branch, at: 2, groups: [[right], [left]]}", "heads\\.T\\..*|branches\\.g(1-G)\\..*"}};
  for (const auto& [arch, pattern] : cases) {
    SCOPED_TRACE(arch);
    mtl::Run ex = vision_run(arch);
    mtl::Batch b = mtl_test::random_multi_fashion_batch(6);
    mtl::ModelOutput out = ex.model->forward(b.inputs);
    std::vector<at::Tensor> losses = mtl::task_losses(ex.tasks, out.outputs, b);
    std::vector<at::Tensor> all;
    std::vector<std::string> names;
    for (auto& kv : ex.model->named_parameters()) names.push_back(kv.key()), all.push_back(kv.value());
    std::vector<std::vector<at::Tensor>> grads;
    for (auto& l : losses) grads.push_back(torch::autograd::grad({l}, all, {}, true, false, true));
    const std::vector<std::string> tasks{"left", "right"};
    int64_t task_owned = 0;
    for (size_t t = 0; t < 2; ++t) {
      std::string p = std::regex_replace(pattern, std::regex("T"), tasks[t]);
      p = std::regex_replace(p, std::regex("\\(1-G\\)"), std::to_string(1 - t));
      p = std::regex_replace(p, std::regex("G"), std::to_string(t));
      const std::regex expected(p);
      std::set<const void*> mine;
      for (auto& q : ex.model->head_parameters(t)) mine.insert(q.unsafeGetTensorImpl());
      for (size_t k = 0; k < all.size(); ++k) {
        const bool is_mine = mine.count(all[k].unsafeGetTensorImpl()) > 0;
        EXPECT_EQ(is_mine, std::regex_match(names[k], expected)) << names[k] << " for task " << tasks[t];
        if (!is_mine) continue;
        ++task_owned;
        const at::Tensor& other = grads[1 - t][k];
        EXPECT_TRUE(!other.defined() || other.abs().max().item<double>() == 0.0)
            << names[k] << " is task " << tasks[t] << "'s but the other task's loss reaches it";
        ASSERT_TRUE(grads[t][k].defined()) << names[k];
      }
    }
    auto shared = ex.model->shared_parameters();
    int64_t owned = 0;
    for (size_t t = 0; t < 2; ++t) owned += numel(ex.model->head_parameters(t));
    EXPECT_EQ(numel(shared) + owned, numel(all));
    std::set<const void*> shared_set;
    for (auto& q : shared) shared_set.insert(q.unsafeGetTensorImpl());
    for (size_t k = 0; k < all.size(); ++k) {
      if (!shared_set.count(all[k].unsafeGetTensorImpl())) continue;
      int reached = 0;
      for (size_t t = 0; t < 2; ++t)
        reached += grads[t][k].defined() && grads[t][k].abs().max().item<double>() > 0.0;
      EXPECT_EQ(reached, 2) << names[k] << " is shared but not every task's loss reaches it";
    }
    EXPECT_GT(task_owned, 0);
  }
}

// The shared representation of one-level architectures is a cut: every task's gradient w.r.t. the shared
// parameters equals the representation's Jacobian applied to that task's representation gradient.
TEST(Architectures, TheSharedRepresentationCarriesEverySharedGradient) {
  for (const std::string arch :
       {"mmoe", "cgc", "{type: mmoe, gate_input: experts}", "dselect_k", "{type: branch, at: 2}"}) {
    SCOPED_TRACE(arch);
    mtl::Run ex = vision_run(arch);
    ex.model->to(at::kDouble);
    mtl::Batch b = mtl_test::random_multi_fashion_batch(6);
    b.inputs["image"] = b.inputs["image"].to(at::kDouble);
    mtl::ModelOutput out = ex.model->forward(b.inputs);
    std::vector<at::Tensor> losses = mtl::task_losses(ex.tasks, out.outputs, b);
    auto shared = ex.model->shared_parameters();
    for (size_t t = 0; t < 2; ++t) {
      auto direct = torch::autograd::grad({losses[t]}, shared, {}, true);
      auto dz = torch::autograd::grad({losses[t]}, {out.features}, {}, true)[0];
      auto through = torch::autograd::grad({out.features}, shared, {dz}, true);
      for (size_t k = 0; k < shared.size(); ++k)
        EXPECT_TRUE(torch::allclose(direct[k], through[k], 1e-10, 1e-12)) << "task " << t << ", parameter " << k;
    }
  }
}

namespace {

struct Trained {
  std::vector<double> losses;
  std::map<std::string, at::Tensor> weights;
};

// 20 SGD steps of MultiFashion (400 examples, batch 20) with `arch` and `weighting` on `threads` workers.
Trained train_steps(const std::string& arch, const std::string& weighting, int threads, mtl_test::TempDir& dir,
                    const std::string& name) {
  std::string yaml = "data: {type: multi_fashion, train_size: 400, test_size: 40, cache_dir: '" + dir.file("c") +
                     "'}\nmodel: {backbone: " + kExpert + ", architecture: " + arch + "}\n" +
                     "tasks: {left: {label: left}, right: {label: right}}\nweighting: " + weighting +
                     "\noptimizer: {type: sgd, lr: 0.05, momentum: 0.9}\ntrainer: {epochs: 1, max_steps: 20, " +
                     "batch_size: 20, threads: " + std::to_string(threads) + ", eval_interval: 0, run_dir: '" +
                     dir.file(name) + "'}\nbaselines: none\n";
  mtl::Run ex = mtl::assemble(mtl::Config::from_string(yaml, "t.yaml"));
  struct Losses : mtl::TrainObserver {
    std::vector<double> total;
    void step_done(const mtl::TrainPosition&, const mtl::StepResult& r) override {
      total.push_back(r.losses[0] + r.losses[1]);
    }
  } losses;
  mtl::TrainRunOptions options;
  options.progress = false;
  options.observers = {&losses};
  mtl::train(ex, options);
  Trained out{losses.total, {}};
  for (auto& kv : ex.model->named_parameters()) out.weights[kv.key()] = kv.value().clone();
  return out;
}

// Every weighting method trains `arch`: 20 finite steps, and 2 threads end where 1 thread does (the same shards
// reduced in another order: equal up to float rounding).
void every_method_trains(const std::string& arch, const std::string& tag) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("arch_methods_" + tag);
  int n = 0;
  for (const std::string& method : mtl::weighting_registry().names()) {
    const std::string weighting = "{method: " + method + "}";
    SCOPED_TRACE(arch + " / " + weighting);
    const bool no_representation =
        arch.find("ple") != std::string::npos || arch == "cross_stitch" || arch == "mtan" || arch == "ltb";
    if (method == "mgda_ub" && no_representation) continue;  // refused: see BadOptions
    Trained one = train_steps(arch, weighting, 1, dir, "r" + std::to_string(n++));
    Trained two = train_steps(arch, weighting, 2, dir, "r" + std::to_string(n++));
    ASSERT_EQ(one.losses.size(), 20u);
    for (double l : one.losses) ASSERT_TRUE(std::isfinite(l));
    double worst = 0.0;
    for (auto& [name, w] : one.weights)
      worst = std::max(worst, (w - two.weights[name]).abs().max().item<double>() /
                                  std::max(1e-3, w.abs().max().item<double>()));
    // pcgrad projects only where a dot product is < 0 and config solves with near-parallel gradients: rounding
    // can flip a projection (cgc, step 9 here) or be amplified (mtan, last step), so their weights may part by
    // more than rounding while the losses stay together.
    EXPECT_LT(worst, method == "pcgrad" || method == "config" ? 5e-2 : 2e-3);
    for (size_t i = 0; i < 20; ++i) EXPECT_NEAR(one.losses[i], two.losses[i], 2e-3 * one.losses[i]) << "step " << i;
  }
}

}  // namespace

// Every step's `weights` line carries each task's mean gate weight per expert over the step's batch: rows
// sum to 1, and 2 threads (each shard's share reduced) log what 1 thread logs.
TEST(Architectures, GateWeightsAreLoggedEveryStep) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("arch_gate_log");
  std::vector<std::vector<nlohmann::json>> logs;
  for (int threads : {1, 2}) {
    const std::string name = "t" + std::to_string(threads);
    train_steps("{type: cgc, shared_experts: 2, task_experts: 1}", "{method: ew}", threads, dir, name);
    std::ifstream log(dir.file(name) + "/metrics.jsonl");
    logs.emplace_back();
    for (std::string line; std::getline(log, line);)
      if (line.find("\"event\":\"weights\"") != std::string::npos) logs.back().push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(logs[0].size(), 20u);
  ASSERT_EQ(logs[1].size(), 20u);
  for (size_t i = 0; i < 20; ++i)
    for (const std::string task : {"left", "right"}) {
      double sum = 0;
      for (int e = 0; e < 3; ++e) {
        const std::string key = task + "/gate" + std::to_string(e);
        ASSERT_TRUE(logs[0][i].contains(key)) << logs[0][i].dump();
        sum += logs[0][i][key].get<double>();
        EXPECT_NEAR(logs[0][i][key].get<double>(), logs[1][i][key].get<double>(), 1e-5) << key << " step " << i;
      }
      EXPECT_NEAR(sum, 1.0, 1e-6);
      EXPECT_FALSE(logs[0][i].contains(task + "/gate3"));
    }
}

TEST(ArchitectureMethods, Mmoe) { every_method_trains("mmoe", "mmoe"); }
TEST(ArchitectureMethods, Cgc) { every_method_trains("cgc", "cgc"); }
TEST(ArchitectureMethods, Ple) { every_method_trains("{type: ple, levels: 2}", "ple"); }
TEST(ArchitectureMethods, DselectK) { every_method_trains("{type: dselect_k, experts: 3}", "dselect_k"); }
TEST(ArchitectureMethods, CrossStitch) { every_method_trains("cross_stitch", "cross_stitch"); }
TEST(ArchitectureMethods, Mtan) { every_method_trains("mtan", "mtan"); }
TEST(ArchitectureMethods, Branch) { every_method_trains("{type: branch, at: 2}", "branch"); }
TEST(ArchitectureMethods, Ltb) { every_method_trains("ltb", "ltb"); }  // 20 steps of the search (fix_epoch 3)

TEST(Architectures, ResumeMidEpochIsBitwiseExact) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("arch_resume");
  int k = 0;
  for (const std::string& arch : kArchitectures) {
    SCOPED_TRACE(arch);
    const std::string tag = std::to_string(k++);
    std::string yaml = "data: {type: multi_fashion, train_size: 300, test_size: 50, cache_dir: '" + dir.file("c") +
                       "'}\nmodel: {backbone: " + kExpert + ", architecture: " + arch + "}\n" +
                       "tasks: {left: {label: left}, right: {label: right}}\nweighting: {method: pcgrad}\n" +
                       "trainer: {epochs: 2, batch_size: 50, threads: 2, seed: 4, eval_interval: 0}\nbaselines: none\n";
    mtl::Run straight = mtl::assemble(mtl::Config::from_string(yaml, "r.yaml", {"trainer.run_dir=" + dir.file("s" + tag)}));
    mtl::train(straight, {"", false});
    mtl::Run first = mtl::assemble(
        mtl::Config::from_string(yaml, "r.yaml", {"trainer.run_dir=" + dir.file("p" + tag), "trainer.max_steps=8"}));
    EXPECT_EQ(mtl::train(first, {"", false}).steps, 8);
    mtl::Run second = mtl::assemble(mtl::Config::from_string(yaml, "r.yaml", {"trainer.run_dir=" + dir.file("p" + tag)}));
    mtl::train(second, {dir.file("p" + tag), false});
    auto b = second.model->named_parameters();
    for (auto& kv : straight.model->named_parameters()) EXPECT_TRUE(torch::equal(kv.value(), b[kv.key()])) << kv.key();
  }
}

TEST(Architectures, BadOptionsAreOneLineErrorsNamingTheKey) {
  auto error = [](const std::string& arch, const std::vector<std::string>& sets = {}) {
    try {
      vision_run(arch, sets);
    } catch (const mtl::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto expect = [&](const std::string& arch, const std::string& key, const std::string& what,
                    const std::vector<std::string>& sets = {}) {
    const std::string e = error(arch, sets);
    EXPECT_NE(e.find(key), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  };
  expect("{type: mmoe, experts: 0}", "model.architecture.experts", "expected an integer >= 1");
  expect("{type: cgc, task_experts: 0}", "model.architecture.task_experts", "expected an integer >= 1");
  expect("{type: ple, levels: 0}", "model.architecture.levels", "expected an integer >= 1");
  expect("{type: ple, shared_experts: -1}", "model.architecture.shared_experts", "expected an integer >= 1");
  expect("{type: mmoe, temperature: 0}", "model.architecture.temperature", "expected a number > 0");
  expect("{type: mmoe, gate_input: raw}", "model.architecture.gate_input", "input");
  expect("{type: mmoe, experts: 1000}", "model.architecture", "at most 256 experts");
  expect("{type: mmeo}", "model.architecture.type", "did you mean 'mmoe'");
  expect("{type: mmoe, expert: 3}", "model.architecture.expert", "did you mean 'experts'");
  expect("{type: ple, levels: 2}", "weighting.space", "no shared representation", {"weighting.method=mgda_ub"});
  expect("{type: ple, levels: 2}", "weighting.space", "no shared representation",
         {"weighting.method=pcgrad", "weighting.space=representation"});
  expect("mmoe", "freeze.blocks", "has 3 blocks", {"freeze.blocks=4"});
  expect("cross_stitch", "weighting.space", "no shared representation", {"weighting.method=mgda_ub"});
  expect("{type: branch, at: 1, groups: [[left, right]]}", "weighting.space", "after the trunk's output",
         {"weighting.method=mgda_ub"});
  expect("{type: branch, at: 0}", "weighting.space", "shares no stage", {"weighting.method=mgda_ub"});
  expect("{type: branch, at: 4}", "model.architecture.at", "expected a stage count in [0, 3]");
  expect("{type: branch}", "model.architecture.at", "missing required key 'at'");
  expect("{type: branch, at: 1, groups: [[left], [rihgt]]}", "model.architecture.groups",
         "no task 'rihgt' (did you mean 'right'?)");
  expect("{type: branch, at: 1, groups: [[left]]}", "model.architecture.groups", "task 'right' is in no group");
  expect("{type: branch, at: 1, groups: [[left], [left, right]]}", "model.architecture.groups", "in two groups");
  expect("{type: cross_stitch, init_same: 2}", "model.architecture.init_same", "expected a value in [0, 1]");
  expect("cross_stitch", "model.architecture.type", "needs a backbone that runs in stages",
         {"model.backbone={type: mlp, hidden: []}"});
  expect("mtan", "model.architecture.type", "needs a backbone that runs in stages",
         {"model.backbone={type: mlp, hidden: []}"});
  expect("mtan", "weighting.space", "no shared representation", {"weighting.method=mgda_ub"});
  expect("{type: dselect_k, experts: 3, k: 4}", "model.architecture.k", "expected at most experts (3)");
  expect("{type: dselect_k, k: 0}", "model.architecture.k", "expected an integer >= 1");
  expect("{type: dselect_k, gamma: 0}", "model.architecture.gamma", "expected a number > 0");
  expect("{type: dselect_k, entropy: -1}", "model.architecture.entropy", "expected a number >= 0");
  expect("{type: dselect_k, experts: 0}", "model.architecture.experts", "expected an integer >= 1");
}

namespace {

// Task t's outputs when its head reads `features`.
at::Tensor head_output(mtl::Run& ex, size_t t, const at::Tensor& features) { return ex.model->head(t)->forward(features); }

std::shared_ptr<mtl::BackboneImpl> submodule(mtl::Run& ex, const std::string& name) {
  auto m = std::dynamic_pointer_cast<mtl::BackboneImpl>(ex.model->named_modules()[name]);
  EXPECT_TRUE(m) << name;
  return m;
}

int64_t count(const std::vector<at::Tensor>& ts) { return numel(ts); }

}  // namespace

// Cross-stitch with identity mixing is T independent networks, exactly; its default (0.9 on the diagonal) mixes.
TEST(Architectures, CrossStitchWithIdentityMixingIsIndependentNetworks) {
  mtl::Run ex = vision_run("cross_stitch");
  mtl::Batch b = mtl_test::random_multi_fashion_batch(4);
  const std::vector<std::string> tasks{"left", "right"};
  auto independent = [&](size_t t) { return head_output(ex, t, submodule(ex, "copies." + tasks[t])->forward(b.inputs)); };
  mtl::ModelOutput mixed = ex.model->forward(b.inputs);
  EXPECT_FALSE(torch::allclose(mixed.outputs[0], independent(0)));
  {
    torch::NoGradGuard no_grad;
    for (auto& kv : ex.model->named_parameters())
      if (kv.key().rfind("stitch.alpha", 0) == 0) kv.value().copy_(torch::eye(2));
  }
  mtl::ModelOutput out = ex.model->forward(b.inputs);
  for (size_t t = 0; t < 2; ++t) EXPECT_TRUE(torch::equal(out.outputs[t], independent(t))) << tasks[t];
  EXPECT_EQ(count(ex.model->shared_parameters()) + count(ex.model->head_parameters(0)) +
                count(ex.model->head_parameters(1)),
            count(ex.model->parameters()));
}

// branch at the last stage is hard sharing (same initial weights, parameter count and outputs); at 0 it is one
// network per task.
TEST(Architectures, BranchAtTheEndIsHardSharingAndAtZeroIndependentNetworks) {
  mtl::Batch b = mtl_test::random_multi_fashion_batch(4);
  mtl::Run hps = vision_run("hps"), end = vision_run("{type: branch, at: 3}");
  EXPECT_EQ(count(hps.model->parameters()), count(end.model->parameters()));
  EXPECT_EQ(count(hps.model->shared_parameters()), count(end.model->shared_parameters()));
  mtl::ModelOutput a = hps.model->forward(b.inputs), c = end.model->forward(b.inputs);
  for (size_t t = 0; t < 2; ++t) EXPECT_TRUE(torch::equal(a.outputs[t], c.outputs[t]));
  EXPECT_TRUE(torch::equal(a.features, c.features));

  mtl::Run zero = vision_run("{type: branch, at: 0}");
  const int64_t one_network = count(hps.model->backbone()->parameters());
  EXPECT_EQ(count(zero.model->parameters()), 2 * one_network + count(hps.model->head_parameters(0)) +
                                                 count(hps.model->head_parameters(1)));
  EXPECT_EQ(count(zero.model->shared_parameters()), 0);
  mtl::ModelOutput z = zero.model->forward(b.inputs);
  for (size_t t = 0; t < 2; ++t)
    EXPECT_TRUE(torch::equal(z.outputs[t],
                             head_output(zero, t, submodule(zero, "branches.g" + std::to_string(t))->forward(b.inputs))));
  // The first branch starts from the weights hard sharing's backbone draws first.
  auto first = submodule(zero, "branches.g0")->named_parameters();
  for (auto& kv : hps.model->backbone()->named_parameters()) EXPECT_TRUE(torch::equal(kv.value(), first[kv.key()])) << kv.key();
}

// Token-level heads read per-token features, which only hard sharing over a text encoder gives; gates cannot
// read token ids.
TEST(Architectures, TextErrorsNameTheKey) {
  mtl::DatasetSchema s;
  s.inputs.push_back({"text", {16}, mtl::InputKind::kTokens, 50});
  mtl::Config cfg = mtl::Config::from_string("a: {type: mmoe, gate_input: input}\nb: {type: transformer, dim: 16}\n",
                                             "t.yaml");
  mtl::ConfigNode a = cfg.root().component("a"), bb = cfg.root().component("b");
  try {
    mtl::architecture_registry().get("mmoe")(a, mtl::ArchitectureContext{bb, mtl::backbone_registry().get(bb.type()), s, {"x"}});
    FAIL() << "no error";
  } catch (const mtl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("a.gate_input"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("token ids of input 'text'; use gate_input: experts"), std::string::npos)
        << e.what();
  }
}

// The shipped MultiFashion configs with mmoe and ple train (a few steps) and build what they say.
TEST(Architectures, TheShippedMultiFashionConfigsTrain) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("arch_configs");
  for (const std::string name : {"mmoe", "ple"}) {
    mtl::Run ex = mtl::assemble(mtl::Config::load(
        mtl_test::source_path("configs/multi_fashion_" + name + ".yaml"),
        {"data.train_size=200", "data.test_size=50", "data.cache_dir=" + dir.file("c"), "trainer.epochs=1",
         "trainer.max_steps=2", "trainer.batch_size=50", "trainer.threads=1", "baselines=none",
         "trainer.run_dir=" + dir.file(name)}));
    EXPECT_EQ(ex.model->architecture().name(), name);
    EXPECT_EQ(mtl::train(ex, {"", false}).steps, 2) << name;
    // The evaluation logs each task's mean gate weight per expert: 2 shared + its own, summing to 1.
    std::ifstream log(dir.file(name) + "/metrics.jsonl");
    std::string line, eval;
    while (std::getline(log, line))
      if (line.find("\"eval\"") != std::string::npos) eval = line;
    auto e = nlohmann::json::parse(eval);
    for (const std::string task : {"left", "right"}) {
      double sum = 0;
      for (int g = 0; g < 3; ++g) {
        const std::string key = task + "/gate" + std::to_string(g);
        ASSERT_TRUE(e.contains(key)) << eval;
        EXPECT_GT(e[key].get<double>(), 0.0);
        sum += e[key].get<double>();
      }
      EXPECT_NEAR(sum, 1.0, 1e-6) << eval;
      EXPECT_FALSE(e.contains(task + "/gate3")) << eval;
    }
  }
}

// The DSelect-k gate: the smooth-step is the paper's cubic between -gamma/2 and gamma/2; a saturated selector
// picks the expert whose binary index its bits spell; rows sum to 1 (also when E is not a power of 2) and have
// at most k non-zero weights once every selector is saturated; the entropy regulariser exists only in training.
TEST(Architectures, DSelectGateChoosesByBinaryCodes) {
  mtl::DSelectGate gate(3, 4, 1, /*gamma=*/1.0, /*entropy=*/0.5);
  at::Tensor t = torch::tensor({-0.6, -0.5, -0.25, 0.0, 0.25, 0.5, 0.6}, torch::kDouble);
  at::Tensor expected = torch::tensor({0.0, 0.0, 0.15625, 0.5, 0.84375, 1.0, 1.0}, torch::kDouble);
  EXPECT_TRUE(torch::allclose(gate->smooth_step(t), expected, 1e-12, 1e-12)) << gate->smooth_step(t);
  {
    torch::NoGradGuard no_grad;
    gate->z->weight.zero_();
    gate->z->bias.copy_(torch::tensor({2.0, -2.0}));  // bits 1, 0: expert 2 of 0..3
  }
  at::Tensor x = torch::randn({5, 3});
  at::Tensor reg;
  at::Tensor w = gate->forward(x, 1.0, &reg);
  EXPECT_TRUE(torch::equal(w, torch::tensor({0.0f, 0.0f, 1.0f, 0.0f}).expand({5, 4}))) << w;
  ASSERT_TRUE(reg.defined());
  EXPECT_NEAR(reg.item<double>(), 0.0, 1e-5);  // a one-hot selector has no entropy
  gate->eval();
  at::Tensor none;
  gate->forward(x, 1.0, &none);
  EXPECT_FALSE(none.defined());
  gate->train();

  for (int64_t E : {2, 3, 5, 8}) {
    for (int64_t k : {1, 2}) {
      SCOPED_TRACE("E " + std::to_string(E) + ", k " + std::to_string(k));
      mtl::DSelectGate g(6, E, k);
      at::Generator gen = mtl::make_generator(7, 0, 0);
      at::Tensor in = at::randn({64, 6}, gen);
      g->reset(gen);
      at::Tensor soft = g->forward(in);
      EXPECT_TRUE(torch::allclose(soft.sum(1), torch::ones({64}), 1e-5, 1e-5));
      EXPECT_GE(soft.min().item<double>(), 0.0);
      // Saturate: scale z so that every |z| > gamma / 2.
      {
        torch::NoGradGuard no_grad;
        g->z->weight.mul_(1e4);
        g->z->bias.mul_(1e4);
      }
      at::Tensor hard = g->forward(in);
      EXPECT_TRUE(torch::allclose(hard.sum(1), torch::ones({64}), 1e-5, 1e-5));
      // Rows whose every selector logit is outside (-gamma/2, gamma/2) (nearly all) choose at most k experts.
      at::Tensor saturated = (g->z->forward(in).abs() >= 0.5).all(1);
      EXPECT_GE(saturated.sum().item<int64_t>(), 48);
      EXPECT_LE((hard.index({saturated}) > 0).sum(1).max().item<int64_t>(), g->nonzero_bound());
    }
  }
}

// The regulariser reaches the task's training loss (task_losses of a ModelOutput) and only its gate's
// parameters among the architecture's.
TEST(Architectures, DSelectRegulariserJoinsTheTaskLoss) {
  mtl::Run ex = vision_run("{type: dselect_k, experts: 3, entropy: 0.1}");
  mtl::Batch b = mtl_test::random_multi_fashion_batch(6);
  mtl::ModelOutput out = ex.model->forward(b.inputs);
  ASSERT_EQ(out.regularizers.size(), 2u);
  auto plain = mtl::task_losses(ex.tasks, out.outputs, b);
  auto with = mtl::task_losses(ex.tasks, out, b);
  for (size_t t = 0; t < 2; ++t) {
    ASSERT_TRUE(out.regularizers[t].defined());
    EXPECT_GT(out.regularizers[t].item<double>(), 0.0);
    EXPECT_NEAR(with[t].item<double>(), plain[t].item<double>() + out.regularizers[t].item<double>(), 1e-6);
  }
  ex.model->eval();
  EXPECT_TRUE(ex.model->forward(b.inputs).regularizers[0].defined() == false);
}

// mtan with every attention mask open (sigmoid = 1) is hard sharing over its backbone; its shapes over a text
// encoder; the shared / task split counts every parameter once.
TEST(Architectures, MtanWithOpenAttentionIsHardSharing) {
  mtl::Run ex = vision_run("mtan");
  mtl::Batch b = mtl_test::random_multi_fashion_batch(4);
  mtl::ModelOutput attended = ex.model->forward(b.inputs);
  at::Tensor shared = submodule(ex, "backbone")->forward(b.inputs);
  EXPECT_FALSE(torch::allclose(attended.outputs[0], head_output(ex, 0, shared)));
  {
    torch::NoGradGuard no_grad;
    for (auto& kv : ex.model->named_parameters())
      if (kv.key().rfind("attention.", 0) == 0 && kv.key().find(".2.") != std::string::npos) {
        if (kv.key().find("weight") != std::string::npos) kv.value().zero_();
        else kv.value().fill_(100.0);
      }
  }
  mtl::ModelOutput open = ex.model->forward(b.inputs);
  for (size_t t = 0; t < 2; ++t) EXPECT_TRUE(torch::equal(open.outputs[t], head_output(ex, t, shared))) << t;
  EXPECT_EQ(count(ex.model->shared_parameters()) + count(ex.model->head_parameters(0)) +
                count(ex.model->head_parameters(1)),
            count(ex.model->parameters()));
  // One attention module per task and stage: 3 stages of the lenet.
  EXPECT_EQ(ex.model->trunk_blocks().size(), 3u);
  EXPECT_NE(ex.model->architecture().describe().find("3 stages"), std::string::npos)
      << ex.model->architecture().describe();

  mtl::DatasetSchema s;
  s.inputs.push_back({"text", {16}, mtl::InputKind::kTokens, 50});
  mtl::Config cfg = mtl::Config::from_string("a: mtan\nb: {type: transformer, dim: 16, heads: 2, layers: 2, ffn_dim: 32}\n",
                                             "t.yaml");
  mtl::ConfigNode a = cfg.root().component("a"), bb = cfg.root().component("b");
  auto m = mtl::architecture_registry().get("mtan")(
      a, mtl::ArchitectureContext{bb, mtl::backbone_registry().get(bb.type()), s, {"x", "y"}});
  mtl::TensorMap in{{"text", torch::randint(1, 50, {3, 16}, torch::kLong)}};
  mtl::TrunkOutput o = m->forward(in);
  ASSERT_EQ(o.task.size(), 2u);
  for (const auto& f : o.task) EXPECT_EQ(f.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_FALSE(o.shared.defined());
}
