// Freezing: selection by pattern, blocks and train_only; frozen parameters get no gradient and no optimizer
// state and stay bit-for-bit unchanged through training; frozen BatchNorm keeps its running statistics;
// freeze.schedule switches at the configured epochs.
#include "mtl/model/freezing.h"

#include <c10/util/string_utils.h>
#include <torch/torch.h>

#include <filesystem>

#include "mtl/engine/parallel_engine.h"
#include "mtl/run/trainer.h"
#include "mtl/optim/param_groups.h"
#include "random_batch.h"
#include "test_util.h"

namespace {

std::string base(const std::string& backbone, const std::string& cache = "") {
  return "data: {type: multi_fashion, train_size: 200, test_size: 50" +
         (cache.empty() ? std::string() : ", cache_dir: '" + cache + "'") + "}\nmodel:\n  backbone: " + backbone +
         R"(
tasks:
  left: {label: left}
  right: {label: right}
optimizer: {type: adam, lr: 0.01}
trainer: {threads: 2, batch_size: 50, seed: 5, log_weights: false}
)";
}

mtl::Run make(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  return mtl::assemble(mtl::Config::from_string(yaml, "test.yaml", sets));
}

std::set<std::string> frozen_names(const mtl::Run& ex) {
  std::set<std::string> out;
  for (const auto& kv : ex.model->named_parameters())
    if (!kv.value().requires_grad()) out.insert(kv.key());
  return out;
}

std::map<std::string, at::Tensor> snapshot(const mtl::MultiTaskModel& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& kv : m->named_parameters()) out[kv.key()] = kv.value().detach().clone();
  for (const auto& kv : m->named_buffers()) out[kv.key()] = kv.value().detach().clone();
  return out;
}

mtl::Batch random_batch(int64_t n) { return mtl_test::random_multi_fashion_batch(n); }

}  // namespace

TEST(Freezing, PatternsBlocksAndTrainOnlySelectParameters) {
  mtl::Run ex = make(base("lenet") + "freeze: {params: ['heads.*.bias'], blocks: 2}\n");
  std::set<std::string> expected{"backbone.conv1.weight", "backbone.conv1.bias", "backbone.conv2.weight",
                                 "backbone.conv2.bias"};
  for (const auto& kv : ex.model->named_parameters())
    if (kv.key().rfind("heads.", 0) == 0 && kv.key().size() > 5 && kv.key().substr(kv.key().size() - 5) == ".bias")
      expected.insert(kv.key());
  EXPECT_EQ(frozen_names(ex), expected);

  ex = make(base("lenet") + "freeze: {train_only: [heads.right, backbone.fc]}\n");
  for (const auto& kv : ex.model->named_parameters()) {
    bool trains = kv.key().rfind("heads.right.", 0) == 0 || kv.key().rfind("backbone.fc.", 0) == 0;
    EXPECT_EQ(kv.value().requires_grad(), trains) << kv.key();
  }
  EXPECT_EQ(mtl::backbone_blocks(*ex.model),
            (std::vector<std::vector<std::string>>{{"backbone.conv1"}, {"backbone.conv2"}, {"backbone.fc"}}));
  mtl::Run res = make(base("{type: resnet, channels: [4, 8], blocks: 1, norm: batch}"));
  auto blocks = mtl::backbone_blocks(*res.model);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[0], (std::vector<std::string>{"backbone.stem", "backbone.stem_bn"}));
  EXPECT_EQ(blocks[2], (std::vector<std::string>{"backbone.blocks.1"}));
}

TEST(Freezing, ConfigErrorsNameTheKey) {
  EXPECT_MTL_ERROR(make(base("lenet") + "freeze: {params: [backbone.nosuch]}\n"), "test.yaml:", "freeze.params",
                   "backbone.nosuch", "selects no parameter");
  EXPECT_MTL_ERROR(make(base("lenet") + "freeze: {blocks: 4}\n"), "freeze.blocks", "has 3 blocks");
  EXPECT_MTL_ERROR(make(base("lenet") + "freeze: {schedule: [{epoch: 1, blocks: 1}]}\n"), "freeze.schedule[0].epoch");
  EXPECT_MTL_ERROR(make(base("lenet") + "freeze: {params: [backbone]}\nweighting: {method: pcgrad}\n"), "freeze",
                   "pcgrad", "without a trainable parameter");
}

TEST(Freezing, FrozenParametersGetNoGradientNoOptimizerStateAndNoChange) {
  mtl::Run ex = make(base("lenet") + "freeze: {params: [backbone.conv1, heads.left]}\n");
  mtl::ParamGroups groups = mtl::build_param_groups(ex.config.optimizer, ex.config.scheduler, *ex.model, *ex.weighting);
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& kv : ex.model->named_parameters()) named.emplace_back(kv.key(), kv.value());
  auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, *ex.weighting, mtl::EngineOptions{2, 1, 0});
  auto before = snapshot(ex.model);
  torch::manual_seed(0);
  for (int64_t step = 0; step < 3; ++step) {
    engine->compute_gradients(random_batch(20), mtl::StepContext{step, 0, {}});
    groups.before_step();
    groups.optimizer().step();
    groups.after_step();
  }
  auto& state = groups.optimizer().state();
  for (const auto& [name, p] : named) {
    bool frozen = name.rfind("backbone.conv1.", 0) == 0 || name.rfind("heads.left.", 0) == 0;
    EXPECT_EQ(p.grad().defined(), !frozen) << name;
    EXPECT_EQ(state.count(c10::guts::to_string(p.unsafeGetTensorImpl())), frozen ? 0u : 1u) << name;
    EXPECT_EQ(torch::equal(p, before[name]), frozen) << name;
  }
}

TEST(Freezing, FrozenBatchNormKeepsItsRunningStatistics) {
  for (bool frozen : {true, false}) {
    std::string yaml = base("{type: resnet, channels: [4], blocks: 1, norm: batch}") +
                       (frozen ? "freeze: {params: [backbone]}\n" : "");
    mtl::Run ex = make(yaml);
    auto engine =
        mtl::make_parallel_engine(ex.model, ex.tasks, *ex.weighting, mtl::EngineOptions{2, 1, 0}, ex.make_model);
    ex.model->train();
    auto before = snapshot(ex.model);
    engine->compute_gradients(random_batch(8), mtl::StepContext{0, 0, {}});
    bool stats_moved = false;
    for (const auto& kv : ex.model->named_buffers())
      if (kv.key().find("running_mean") != std::string::npos) stats_moved = stats_moved || !torch::equal(kv.value(), before[kv.key()]);
    EXPECT_EQ(stats_moved, !frozen);
    if (frozen) {
      EXPECT_FALSE(ex.model->frozen_norm_modules().empty());
      for (const auto& kv : ex.model->named_modules("", false))
        if (kv.key().find("bn") != std::string::npos && kv.key().rfind("backbone.", 0) == 0)
          EXPECT_FALSE(kv.value()->is_training()) << kv.key();
    }
  }
}

TEST(Freezing, ScheduleUnfreezesAtTheConfiguredEpochs) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("freeze_schedule");
  std::string yaml = base("lenet", dir.file("cache")) +
                     "freeze: {blocks: 2, schedule: [{epoch: 2, blocks: 1}, {epoch: 3}]}\n";
  std::map<std::string, at::Tensor> init = snapshot(make(yaml).model);
  auto changed = [&](const mtl::MultiTaskModel& m, const std::string& prefix) {
    for (const auto& kv : m->named_parameters())
      if (kv.key().rfind(prefix, 0) == 0 && !torch::equal(kv.value(), init[kv.key()])) return true;
    return false;
  };
  for (int64_t epochs = 1; epochs <= 3; ++epochs) {
    std::string run = dir.file("run" + std::to_string(epochs));
    mtl::Run ex = make(yaml, {"trainer.epochs=" + std::to_string(epochs), "trainer.run_dir=" + run});
    mtl::train(ex, mtl::TrainRunOptions{"", false});
    EXPECT_TRUE(changed(ex.model, "backbone.fc.")) << epochs;
    EXPECT_EQ(changed(ex.model, "backbone.conv2."), epochs >= 2) << epochs;
    EXPECT_EQ(changed(ex.model, "backbone.conv1."), epochs >= 3) << epochs;
    std::string log = mtl_test::read_file(run + "/metrics.jsonl");
    size_t events = 0;
    for (size_t at = log.find("\"event\":\"freeze\""); at != std::string::npos; at = log.find("\"event\":\"freeze\"", at + 1))
      ++events;
    EXPECT_EQ(events, static_cast<size_t>(epochs)) << log;
  }
}
