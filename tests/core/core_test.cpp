// Registries, samplers and learning-rate schedules.
#include <set>

#include "backbones/backbone.h"
#include "heads/head.h"
#include "mtl/config/config_node.h"
#include "mtl/core/registry.h"
#include "mtl/data/dataset.h"
#include "mtl/data/sampler.h"
#include "mtl/metrics/metric.h"
#include "mtl/optim/optimizer.h"
#include "mtl/weighting/weighting.h"
#include "test_util.h"

TEST(Registry, UnknownNameListsKnownNamesAndSuggests) {
  mtl::Registry<int> r("widget");
  r.add("alpha", 1);
  r.add("beta", 2);
  EXPECT_EQ(r.get("beta"), 2);
  EXPECT_MTL_ERROR(r.get("alpah", "cfg.yaml:3:4"), "cfg.yaml:3:4", "unknown widget 'alpah'", "did you mean 'alpha'",
                   "known: alpha, beta");
  EXPECT_MTL_ERROR(r.add("alpha", 3), "registered twice");
}

TEST(Registry, BuiltinsAreRegistered) {
  auto has = [](const std::vector<std::string>& names, const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  for (auto n : {"mlp", "lenet", "resnet"}) EXPECT_TRUE(has(mtl::backbone_registry().names(), n)) << n;
  for (auto n : {"classification", "multilabel", "regression"}) EXPECT_TRUE(has(mtl::head_registry().names(), n)) << n;
  for (auto n : {"cross_entropy", "bce_with_logits", "mse", "l1", "huber"})
    EXPECT_TRUE(has(mtl::loss_registry().names(), n)) << n;
  for (auto n : {"accuracy", "top_k_accuracy", "macro_f1", "mae", "rmse", "r2"})
    EXPECT_TRUE(has(mtl::metric_registry().names(), n)) << n;
  for (auto n : {"ew", "fixed"}) EXPECT_TRUE(has(mtl::weighting_registry().names(), n)) << n;
  for (auto n : {"multi_fashion", "fashion_mnist", "idx", "csv"}) EXPECT_TRUE(has(mtl::dataset_registry().names(), n)) << n;
}

TEST(Sampler, PermutationDependsOnlyOnSeedAndEpoch) {
  auto a = mtl::epoch_permutation(1000, 7, 3);
  EXPECT_EQ(a, mtl::epoch_permutation(1000, 7, 3));
  EXPECT_NE(a, mtl::epoch_permutation(1000, 7, 4));
  EXPECT_NE(a, mtl::epoch_permutation(1000, 8, 3));
  std::set<int64_t> s(a.begin(), a.end());
  EXPECT_EQ(s.size(), 1000u);
  EXPECT_EQ(*s.begin(), 0);
  EXPECT_EQ(*s.rbegin(), 999);
}

TEST(Sampler, BatchesCoverEveryExampleOnce) {
  std::vector<int64_t> order{4, 2, 0, 1, 3};
  auto b = mtl::make_batches(order, 2, false);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[2], (std::vector<int64_t>{3}));
  EXPECT_EQ(mtl::make_batches(order, 2, true).size(), 2u);
  EXPECT_EQ(mtl::batches_per_epoch(5, 2, false), 3);
  EXPECT_EQ(mtl::batches_per_epoch(5, 2, true), 2);
}

namespace {
mtl::SchedulerOptions sched(const std::string& yaml) {
  mtl::Config cfg = mtl::Config::from_string(yaml);
  return mtl::parse_scheduler_options(cfg.root().component("scheduler"));
}
}  // namespace

TEST(Schedule, ClosedFormValues) {
  const double base = 0.1;
  // 10 steps per epoch, 100 steps in all.
  EXPECT_DOUBLE_EQ(mtl::scheduled_lr(sched("scheduler: constant"), base, 55, 10, 100), 0.1);
  auto step = sched("scheduler: {type: step, step_size: 2, gamma: 0.5}");
  EXPECT_DOUBLE_EQ(mtl::scheduled_lr(step, base, 19, 10, 100), 0.1);    // epoch 1
  EXPECT_DOUBLE_EQ(mtl::scheduled_lr(step, base, 20, 10, 100), 0.05);   // epoch 2
  EXPECT_DOUBLE_EQ(mtl::scheduled_lr(step, base, 45, 10, 100), 0.025);  // epoch 4
  auto ms = sched("scheduler: {type: multistep, milestones: [3, 7], gamma: 0.1}");
  EXPECT_NEAR(mtl::scheduled_lr(ms, base, 29, 10, 100), 0.1, 1e-15);
  EXPECT_NEAR(mtl::scheduled_lr(ms, base, 30, 10, 100), 0.01, 1e-15);
  EXPECT_NEAR(mtl::scheduled_lr(ms, base, 75, 10, 100), 0.001, 1e-15);
  auto cos = sched("scheduler: {type: cosine, warmup_steps: 10, min_lr: 0.0}");
  EXPECT_DOUBLE_EQ(mtl::scheduled_lr(cos, base, 0, 10, 100), 0.0);      // warmup starts at 0
  EXPECT_DOUBLE_EQ(mtl::scheduled_lr(cos, base, 5, 10, 100), 0.05);     // halfway through warmup
  EXPECT_DOUBLE_EQ(mtl::scheduled_lr(cos, base, 10, 10, 100), 0.1);     // peak
  EXPECT_NEAR(mtl::scheduled_lr(cos, base, 55, 10, 100), 0.05, 1e-12);  // half of the cosine
  EXPECT_NEAR(mtl::scheduled_lr(cos, base, 100, 10, 100), 0.0, 1e-12);
  auto lin = sched("scheduler: {type: linear, min_lr: 0.01}");
  EXPECT_NEAR(mtl::scheduled_lr(lin, base, 50, 10, 100), 0.055, 1e-12);
}
