// trainer.threads: auto: the candidate plans, a probe that moves nothing (weights, BatchNorm statistics, the
// weighting method's state), and a run that records its plan and resumes with it bitwise exactly.
#include "mtl/run/thread_plan.h"

#include <torch/torch.h>

#include "mtl/io/checkpoint.h"
#include "mtl/run/assembler.h"
#include "mtl/run/run_config.h"
#include "mtl/run/trainer.h"
#include "random_batch.h"
#include "test_util.h"

namespace {

std::vector<std::pair<int, int>> shapes(const std::vector<mtl::ThreadPlan>& plans) {
  std::vector<std::pair<int, int>> out;
  for (const auto& p : plans) out.emplace_back(p.workers, p.intra_op_threads);
  return out;
}

}  // namespace

TEST(ThreadPlan, CandidatesSplitTheCoresIntoWorkersTimesIntraOpThreads) {
  using V = std::vector<std::pair<int, int>>;
  EXPECT_EQ(shapes(mtl::candidate_thread_plans(1)), (V{{1, 1}}));
  EXPECT_EQ(shapes(mtl::candidate_thread_plans(2)), (V{{2, 1}, {1, 2}}));
  EXPECT_EQ(shapes(mtl::candidate_thread_plans(6)), (V{{6, 1}, {3, 2}, {2, 3}, {1, 6}}));
}

TEST(ThreadPlan, ProbeTimesEveryPlanAndMovesNothing) {
  mtl::Run run = mtl::assemble(mtl::Config::from_string(
      "data: {type: multi_fashion}\nmodel: {backbone: {type: resnet, channels: [4, 8], norm: batch}}\n"
      "tasks: {left: {label: left}, right: {label: right}}\nweighting: {method: gradnorm}\n",
      "p.yaml"));
  torch::manual_seed(1);
  const mtl::Batch batch = mtl_test::random_multi_fashion_batch(16);
  std::vector<at::Tensor> before;
  for (const auto& t : run.model->parameters()) before.push_back(t.clone());
  for (const auto& t : run.model->buffers()) before.push_back(t.clone());
  const at::Tensor method_weights = run.weighting->parameters()[0].clone();

  std::vector<mtl::ThreadPlan> probed = mtl::probe_thread_plans(run, batch, 2, 2);
  ASSERT_EQ(probed.size(), 2u);
  for (size_t i = 0; i < probed.size(); ++i) {
    EXPECT_GT(probed[i].step_ms, 0.0);
    if (i > 0) EXPECT_LE(probed[i - 1].step_ms, probed[i].step_ms);
  }
  size_t k = 0;
  for (const auto& t : run.model->parameters()) {
    EXPECT_TRUE(torch::equal(t, before[k++]));
    EXPECT_FALSE(t.grad().defined());
  }
  for (const auto& t : run.model->buffers()) EXPECT_TRUE(torch::equal(t, before[k++])) << "BatchNorm statistics moved";
  EXPECT_TRUE(torch::equal(run.weighting->parameters()[0], method_weights));
  EXPECT_TRUE(run.weighting->last_weights().empty()) << "the run's weighting method was called";
  const std::string text = mtl::describe_thread_plans(probed);
  EXPECT_NE(text.find("probe, ms per gradient step: "), std::string::npos) << text;
}

// With threads auto the run logs and checkpoints its plan; a resumed run keeps it and ends bitwise equal to a
// straight run with that plan given explicitly.
TEST(ThreadPlan, AutoRunRecordsItsPlanAndResumesWithIt) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (mtl::physical_cores() < 2) GTEST_SKIP() << "one core: threads auto has a single plan and no probe";
  mtl_test::TempDir dir("thread_plan");
  const std::string yaml = "data: {type: multi_fashion, train_size: 400, test_size: 50, cache_dir: '" +
                           dir.file("c") + "'}\nmodel: {backbone: lenet}\n" +
                           "tasks: {left: {label: left}, right: {label: right}}\n" +
                           "trainer: {epochs: 1, batch_size: 40, seed: 2, eval_interval: 0}\nbaselines: none\n";
  auto make = [&](std::vector<std::string> sets) {
    return mtl::assemble(mtl::Config::from_string(yaml, "a.yaml", sets));
  };
  mtl::Run first = make({"trainer.run_dir=" + dir.file("split"), "trainer.max_steps=4"});
  ASSERT_TRUE(first.config.engine.probe_plan);
  mtl::train(first, {"", false});
  const std::string log = mtl_test::read_file(dir.file("split/metrics.jsonl"));
  EXPECT_NE(log.find("\"event\":\"thread_plan\""), std::string::npos) << log.substr(0, 300);
  mtl::Run probe = make({"trainer.run_dir=" + dir.file("unused")});
  mtl::TrainPosition pos = mtl::load_checkpoint(dir.file("split/checkpoint.pt"), {probe.model.get()}, false);
  ASSERT_GE(pos.workers, 1);
  ASSERT_EQ(pos.workers * pos.intra_op_threads, first.config.engine.threads * first.config.engine.intra_op_threads);

  mtl::Run second = make({"trainer.run_dir=" + dir.file("split")});
  mtl::train(second, {dir.file("split"), false});
  mtl::Run straight = make({"trainer.run_dir=" + dir.file("straight"),
                            "trainer.threads=" + std::to_string(pos.workers),
                            "trainer.intra_op_threads=" + std::to_string(pos.intra_op_threads)});
  EXPECT_FALSE(straight.config.engine.probe_plan);
  mtl::train(straight, {"", false});
  auto ps = straight.model->named_parameters();
  for (const auto& kv : second.model->named_parameters())
    EXPECT_TRUE(torch::equal(kv.value(), ps[kv.key()])) << kv.key();
}

// A rank of a local distributed run (LOCAL_WORLD_SIZE ranks on this machine) counts its share of the cores for
// `auto`, so that N ranks do not each take every core (2 ranks x 2 intra-op threads on 2 cores spin OpenMP
// threads against each other: MultiLeNet ran at a third of its speed).
TEST(ThreadPlan, AutoCountsThisProcessesShareOfTheCores) {
  const std::string yaml = "data: {type: multi_fashion}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}}\n"
                           "trainer: {threads: 1}\n";
  const int64_t all = mtl::physical_cores();
  mtl::RunConfig alone = mtl::parse_run_config(mtl::Config::from_string(yaml, "t.yaml"));
  EXPECT_EQ(alone.engine.intra_op_threads, all);
  setenv("LOCAL_WORLD_SIZE", "2", 1);
  mtl::RunConfig shared = mtl::parse_run_config(mtl::Config::from_string(yaml, "t.yaml"));
  mtl::RunConfig automatic = mtl::parse_run_config(mtl::Config::from_string(
      "data: {type: multi_fashion}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}}\n", "t.yaml"));
  unsetenv("LOCAL_WORLD_SIZE");
  EXPECT_EQ(mtl::process_cores(), all);
  EXPECT_EQ(shared.engine.intra_op_threads, std::max<int64_t>(1, all / 2));
  EXPECT_EQ(automatic.engine.threads * automatic.engine.intra_op_threads, std::max<int64_t>(1, all / 2));
}
