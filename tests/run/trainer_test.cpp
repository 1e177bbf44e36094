// End-to-end training on real MultiFashion data, and exact resume from checkpoints.
#include "mtl/run/trainer.h"

#include <torch/torch.h>

#include <filesystem>

#include "mtl/io/checkpoint.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

std::string config_text(const std::string& cache_dir, int64_t train_size, int64_t test_size) {
  return "data: {type: multi_fashion, train_size: " + std::to_string(train_size) +
         ", test_size: " + std::to_string(test_size) + ", cache_dir: '" + cache_dir + "'}\n" +
         R"(model:
  backbone: {type: lenet}
tasks:
  left: {label: left, metrics: [accuracy, macro_f1], head: {hidden: [32], dropout: 0.3}}
  right: {label: right, metrics: [accuracy], head: {hidden: [32], dropout: 0.3}}
optimizer: {type: sgd, lr: 0.01, momentum: 0.9}
trainer: {epochs: 2, batch_size: 50, threads: 1, seed: 3}
)";
}

mtl::Run make(const std::string& yaml, const std::vector<std::string>& sets) {
  return mtl::assemble(mtl::Config::from_string(yaml, "test.yaml", sets));
}

void expect_same_weights(mtl::MultiTaskModel& a, mtl::MultiTaskModel& b) {
  auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& kv : pa)
    EXPECT_TRUE(torch::equal(kv.value(), pb[kv.key()])) << "parameter differs: " << kv.key();
}

}  // namespace

TEST(Trainer, LearnsMultiFashionFarAboveChance) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("train_e2e");
  mtl::Run ex = make(config_text(dir.file("cache"), 6000, 1000),
                            {"trainer.run_dir=" + dir.file("run"), "trainer.batch_size=32", "trainer.threads=2",
                             "trainer.epochs=3", "optimizer.lr=0.01", "tasks.left.head.dropout=0",
                             "tasks.right.head.dropout=0"});
  mtl::TrainSummary s = mtl::train(ex, mtl::TrainRunOptions{"", false});
  double left = s.final_eval.value("left", "accuracy"), right = s.final_eval.value("right", "accuracy");
  std::cout << "MultiFashion 6000 examples x 3 epochs: left " << left << ", right " << right << "\n";
  // Chance is 0.10 on both tasks.
  EXPECT_GT(left, 0.45);
  EXPECT_GT(right, 0.45);
  EXPECT_TRUE(fs::exists(dir.file("run/checkpoint.pt")));
  EXPECT_TRUE(fs::exists(dir.file("run/config.yaml")));
  std::string log = mtl_test::read_file(dir.file("run/metrics.jsonl"));
  EXPECT_NE(log.find("\"event\":\"eval\""), std::string::npos);
  EXPECT_NE(log.find("\"left/accuracy\""), std::string::npos);
  // The task weights are logged after every step (trainer.log_weights, default true).
  size_t weight_lines = 0;
  for (size_t at = log.find("\"event\":\"weights\""); at != std::string::npos;
       at = log.find("\"event\":\"weights\"", at + 1))
    ++weight_lines;
  EXPECT_EQ(static_cast<int64_t>(weight_lines), s.steps);
  EXPECT_NE(log.find("\"right/weight\":1.0,\"right/loss\":"), std::string::npos);
  // The saved resolved config builds the same experiment again.
  mtl::Run again = mtl::assemble(mtl::Config::load(dir.file("run/config.yaml")));
  EXPECT_EQ(again.config.trainer.batch_size, 32);
}

TEST(Trainer, ResumeAtEpochBoundaryIsBitwiseExact) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("resume_epoch");
  std::string yaml = config_text(dir.file("cache"), 600, 100);
  mtl::Run straight = make(yaml, {"trainer.run_dir=" + dir.file("straight")});
  mtl::train(straight, {"", false});

  mtl::Run first = make(yaml, {"trainer.run_dir=" + dir.file("split"), "trainer.epochs=1"});
  mtl::train(first, {"", false});
  mtl::Run second = make(yaml, {"trainer.run_dir=" + dir.file("split")});
  mtl::TrainSummary s = mtl::train(second, {dir.file("split"), false});
  EXPECT_EQ(s.steps, 24);
  expect_same_weights(straight.model, second.model);
}

TEST(Trainer, ResumeMidEpochIsBitwiseExact) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("resume_mid");
  std::string yaml = config_text(dir.file("cache"), 600, 100);
  mtl::Run straight = make(yaml, {"trainer.run_dir=" + dir.file("straight")});
  mtl::train(straight, {"", false});

  // Stop after 17 steps (epoch 2, batch 5), then continue to the end.
  mtl::Run first = make(yaml, {"trainer.run_dir=" + dir.file("split"), "trainer.max_steps=17"});
  EXPECT_EQ(mtl::train(first, {"", false}).steps, 17);
  mtl::Run second = make(yaml, {"trainer.run_dir=" + dir.file("split")});
  mtl::train(second, {dir.file("split"), false});
  expect_same_weights(straight.model, second.model);
}

// Weighting state (FAMO's logits and Adam moments, GradNorm's weights and L(0), STCH's nadir, IMTL's scales)
// is checkpointed: a run split mid-epoch ends bitwise equal to the straight run.
TEST(Trainer, ResumeMidEpochIsBitwiseExactWithStatefulWeightings) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("resume_weighting");
  std::string yaml = config_text(dir.file("cache"), 600, 100);
  int k = 0;
  for (std::string method : {"{method: famo}", "{method: gradnorm}", "{method: stch, warmup_epochs: 0}",
                             "{method: imtl}", "{method: gradvac}"}) {
    std::string tag = std::to_string(k++);
    mtl::Run straight = make(yaml, {"trainer.run_dir=" + dir.file("straight" + tag), "weighting=" + method});
    mtl::train(straight, {"", false});
    mtl::Run first =
        make(yaml, {"trainer.run_dir=" + dir.file("split" + tag), "trainer.max_steps=17", "weighting=" + method});
    mtl::train(first, {"", false});
    mtl::Run second = make(yaml, {"trainer.run_dir=" + dir.file("split" + tag), "weighting=" + method});
    mtl::train(second, {dir.file("split" + tag), false});
    SCOPED_TRACE(method);
    expect_same_weights(straight.model, second.model);
    EXPECT_EQ(straight.weighting->last_weights(), second.weighting->last_weights());
  }
}

TEST(Trainer, NeverOverwritesAnEarlierRun) {
  mtl_test::TempDir dir("fresh");
  fs::create_directories(dir.file("run"));
  mtl_test::write_file(dir.file("run/checkpoint.pt"), "precious");
  EXPECT_EQ(mtl::fresh_run_dir(dir.file("run")), dir.file("run") + "-2");
  fs::create_directories(dir.file("empty"));
  EXPECT_EQ(mtl::fresh_run_dir(dir.file("empty")), dir.file("empty"));
}

TEST(Trainer, UnwritableRunDirIsAClearError) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("unwritable");
  mtl_test::write_file(dir.file("afile"), "x");
  mtl::Run ex = make(config_text(dir.file("cache"), 100, 50), {"trainer.run_dir=" + dir.file("afile/run")});
  EXPECT_MTL_ERROR(mtl::train(ex, {"", false}), dir.file("afile/run"), "cannot create directory");
}

TEST(Trainer, ResumeWithoutCheckpointIsAClearError) {
  mtl_test::TempDir dir("nockpt");
  mtl::Run ex = make(config_text(dir.file("cache"), 100, 50), {"trainer.run_dir=" + dir.file("run")});
  EXPECT_MTL_ERROR(mtl::train(ex, {dir.path(), false}), dir.path(), "no checkpoint.pt");
}
