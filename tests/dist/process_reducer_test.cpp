// Gradients across processes: N ranks (threads of this test, each with its own Gloo process group over one c10d
// HashStore, its own copy of the model and its own 2-worker parallel engine with a ProcessReducer) each compute
// the gradients of their rows of one batch; every rank's result must equal the single-process full-batch
// gradient of a 1-thread engine (float32, 1e-5 relative), for the total gradient (ew), the per-task T x P path
// (pcgrad, mgda, nash_mtl), the representation path (mgda with space: representation) and a loss-based
// stateful method (famo); the gradient diagnostics of every path are the single process's too. Also the environment contract (torchrun's variables) and its one-line errors.
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/torch.h>

#include <numeric>
#include <thread>

#include "mtl/dist/process_group.h"
#include "mtl/dist/process_reducer.h"
#include "mtl/engine/parallel_engine.h"
#include "mtl/engine/shard_plan.h"
#include "mtl/run/assembler.h"
#include "mtl/run/evaluate.h"
#include "random_batch.h"
#include "test_util.h"
#include "weighting/weighting_test_util.h"

namespace {

mtl::Run make_run() {
  const std::string yaml =
      "data: {type: multi_fashion}\nmodel: {backbone: {type: lenet, channels: [4, 6], out_features: 12}}\n"
      "tasks:\n  left: {label: left}\n  right: {label: right}\ntrainer: {threads: 1}\n";
  return mtl::assemble(mtl::Config::from_string(yaml, "r.yaml"));
}

std::vector<at::Tensor> grads_of(mtl::MultiTaskModel& model) {
  std::vector<at::Tensor> out;
  for (auto& p : model->parameters()) out.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
  return out;
}

struct RankResult {
  std::vector<at::Tensor> grads;
  std::vector<double> losses, weights;
  std::optional<mtl::GradientDiagnostics> diagnostics;
  std::string error;
};

// Rank r of `world`: its rows of `batch`, 2 worker threads, gradients reduced across the ranks.
RankResult run_rank(c10::intrusive_ptr<c10d::Store> store, int rank, int world, mtl::Run& ex,
                    const mtl::Batch& batch, const std::string& method) {
  RankResult out;
  try {
    auto group = std::make_shared<mtl::ProcessGroup>(store, rank, world, std::chrono::seconds(30));
    mtl::MultiTaskModel model = ex.make_model();
    mtl_test::copy_state(*ex.model, *model);
    auto w = mtl_test::make_weighting(method, 2);
    w->set_shared_parameters(mtl::trainable_shared_parameters(*model));
    mtl::EngineOptions options{2, 1, 0};
    options.first_shard = rank * 2;
    options.diagnostics_every = 1;
    auto engine = mtl::make_parallel_engine(model, ex.tasks, *w, options, ex.make_model,
                                            std::make_unique<mtl::ProcessReducer>(group));
    const std::vector<int64_t> off = mtl::shard_offsets(batch.size, world);
    mtl::Batch part = batch.slice(off[rank], off[rank + 1]);
    part.global_size = batch.size;
    mtl::StepResult r = engine->compute_gradients(part, {});
    out.grads = grads_of(model);
    out.losses = r.losses;
    out.weights = r.weights;
    out.diagnostics = r.diagnostics;
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

}  // namespace

TEST(ProcessReducer, RanksGradientsEqualTheSingleProcessFullBatchGradient) {
  mtl::Run ex = make_run();
  torch::manual_seed(3);
  const mtl::Batch batch = mtl_test::random_multi_fashion_batch(23);  // 23 rows: no split divides it evenly
  for (const std::string method : {"{method: ew}", "{method: pcgrad}", "{method: mgda}", "{method: nash_mtl}",
                                   "{method: mgda, space: representation}", "{method: famo}"}) {
    auto w = mtl_test::make_weighting(method, 2);
    w->set_shared_parameters(mtl::trainable_shared_parameters(*ex.model));
    mtl::EngineOptions one{1, 1, 0};
    one.diagnostics_every = 1;  // gradient diagnostics reduced across the ranks too
    auto reference = mtl::make_parallel_engine(ex.model, ex.tasks, *w, one, ex.make_model);
    const mtl::StepResult want = reference->compute_gradients(batch, {});
    const std::vector<at::Tensor> want_grads = grads_of(ex.model);
    for (int world : {2, 3}) {
      auto store = c10::make_intrusive<c10d::HashStore>();
      std::vector<RankResult> results(world);
      std::vector<std::thread> ranks;
      for (int r = 0; r < world; ++r)
        ranks.emplace_back([&, r] { results[r] = run_rank(store, r, world, ex, batch, method); });
      for (auto& t : ranks) t.join();
      for (int r = 0; r < world; ++r) {
        const std::string what = method + ", " + std::to_string(world) + " ranks, rank " + std::to_string(r);
        ASSERT_EQ(results[r].error, "") << what;
        ASSERT_EQ(results[r].grads.size(), want_grads.size()) << what;
        for (size_t k = 0; k < want_grads.size(); ++k) {
          ASSERT_TRUE(results[r].grads[k].defined()) << what << ", parameter " << k;
          const double scale = std::max(1e-12, want_grads[k].norm().item<double>());
          EXPECT_LE((results[r].grads[k] - want_grads[k]).norm().item<double>() / scale, 1e-5)
              << what << ", parameter " << k;
        }
        for (size_t t = 0; t < want.losses.size(); ++t) {
          EXPECT_NEAR(results[r].losses[t], want.losses[t], 1e-5 * std::abs(want.losses[t])) << what;
          EXPECT_NEAR(results[r].weights[t], want.weights[t], 1e-5) << what;
        }
        ASSERT_TRUE(want.diagnostics && results[r].diagnostics) << what;
        const mtl::GradientDiagnostics &d = *results[r].diagnostics, &e = *want.diagnostics;
        for (size_t t = 0; t < 2; ++t) EXPECT_NEAR(d.norms[t], e.norms[t], 1e-5 * e.norms[t]) << what;
        EXPECT_NEAR(d.cosine[0][1], e.cosine[0][1], 1e-5) << what;
        EXPECT_EQ(d.conflict_share, e.conflict_share) << what;
        EXPECT_NEAR(d.combined_norm, e.combined_norm, 1e-5 * e.combined_norm) << what;
      }
    }
  }
}

TEST(LaunchEnv, ReadsTorchrunsVariablesAndRejectsBadOnes) {
  auto env = [](std::map<std::string, std::string> vars) {
    return mtl::read_launch_env([vars = std::move(vars)](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    });
  };
  mtl::LaunchEnv single = env({});
  EXPECT_FALSE(single.distributed());
  EXPECT_EQ(single.world_size, 1);

  mtl::LaunchEnv e = env({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                          {"MASTER_ADDR", "10.0.0.7"}, {"MASTER_PORT", "29511"},
                          {"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_TRUE(e.distributed());
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.7");
  EXPECT_EQ(e.master_port, 29511);
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(e.restart_count, 2);

  auto message = [&](std::map<std::string, std::string> vars) {
    try {
      env(std::move(vars));
    } catch (const mtl::Error& err) {
      return std::string(err.what());
    }
    return std::string("no error");
  };
  const std::map<std::string, std::string> base{{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"},
                                                {"MASTER_PORT", "29512"}};
  auto with = [&](const std::string& k, const std::string& v) {
    auto m = base;
    m[k] = v;
    return m;
  };
  EXPECT_NE(message(with("RANK", "2")).find("RANK"), std::string::npos);
  EXPECT_NE(message(with("RANK", "x")).find("expected an integer"), std::string::npos);
  EXPECT_NE(message(with("MASTER_PORT", "70000")).find("MASTER_PORT"), std::string::npos);
  EXPECT_NE(message(with("WORLD_SIZE", "0")).find("WORLD_SIZE"), std::string::npos);
  auto no_port = base;
  no_port.erase("MASTER_PORT");
  EXPECT_NE(message(no_port).find("MASTER_PORT"), std::string::npos);
  EXPECT_EQ(message(base), "no error");
}

TEST(ProcessGroup, CollectivesSumBroadcastAndGatherUnevenParts) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  const int world = 3;
  std::vector<std::string> errors(world);
  std::vector<std::vector<at::Tensor>> gathered(world);
  std::vector<at::Tensor> sums(world), broadcasts(world);
  std::vector<std::thread> ranks;
  for (int r = 0; r < world; ++r)
    ranks.emplace_back([&, r] {
      try {
        mtl::ProcessGroup g(store, r, world, std::chrono::seconds(30));
        std::vector<at::Tensor> t{at::full({3}, double(r + 1)), at::full({2}, float(10 * r))};
        g.allreduce_sum(t);
        sums[r] = at::cat({t[0], t[1].to(at::kDouble)});
        std::vector<at::Tensor> b{at::full({2}, double(r + 5))};
        g.broadcast(b, 1);
        broadcasts[r] = b[0];
        gathered[r] = g.allgather(at::arange(r + 1, at::kFloat));  // lengths 1, 2, 3
        g.check_same("same", "configs");
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  for (int r = 0; r < world; ++r) {
    ASSERT_EQ(errors[r], "") << "rank " << r;
    EXPECT_TRUE(at::equal(sums[r], at::tensor({6.0, 6.0, 6.0, 30.0, 30.0}, at::kDouble))) << sums[r];
    EXPECT_TRUE(at::equal(broadcasts[r], at::full({2}, 6.0, at::kDouble))) << broadcasts[r];
    ASSERT_EQ(gathered[r].size(), 3u);
    for (int q = 0; q < world; ++q) EXPECT_TRUE(at::equal(gathered[r][q], at::arange(q + 1, at::kFloat)));
  }
}

TEST(ProcessGroup, DifferentConfigsAreAOneLineErrorNamingTheRanks) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::vector<std::string> errors(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      try {
        mtl::ProcessGroup g(store, r, 2, std::chrono::seconds(30));
        g.check_same(r == 0 ? "lr: 0.1" : "lr: 0.2", "configs");
      } catch (const mtl::Error& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(errors[r].find("different configs"), std::string::npos) << errors[r];
    EXPECT_EQ(errors[r].find('\n'), std::string::npos) << errors[r];
  }
}

// Counts the rows each evaluation reads (one counter per rank, as each rank wraps the data itself).
class CountingDataset : public mtl::Dataset {
 public:
  explicit CountingDataset(std::shared_ptr<mtl::Dataset> inner) : inner_(std::move(inner)) {}
  int64_t size() const override { return inner_->size(); }
  mtl::Batch batch(const std::vector<int64_t>& indices) const override {
    rows += static_cast<int64_t>(indices.size());
    return inner_->batch(indices);
  }
  mutable int64_t rows = 0;

 private:
  std::shared_ptr<mtl::Dataset> inner_;
};

// A distributed evaluation (each rank its contiguous share of the test batches, statistics combined in rank
// order) gives every rank the one-process result on real MultiFashion data: accuracy, top-2 and macro-F1 by
// counts exactly, the mean loss to rounding; also with more ranks than batches (a rank with none).
TEST(ProcessEvaluation, RanksShareTheBatchesAndGetTheOneProcessMetrics) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("dist_eval");
  const std::string yaml = "data: {type: multi_fashion, train_size: 64, test_size: 101, cache_dir: '" +
                           dir.file("cache") +
                           "'}\nmodel: {backbone: {type: lenet, channels: [4, 6], out_features: 12}}\n"
                           "tasks:\n  left: {label: left, metrics: [accuracy, {type: top_k_accuracy, k: 2}, macro_f1]}\n"
                           "  right: {label: right, metrics: [accuracy, macro_f1]}\ntrainer: {threads: 1}\n";
  mtl::Run ex = mtl::assemble(mtl::Config::from_string(yaml, "e.yaml"));
  std::shared_ptr<mtl::Dataset> test = ex.data->open(mtl::Split::kTest);
  for (int64_t batch_size : {16, 50}) {
    const mtl::EvalResult want = mtl::evaluate(ex.model, ex.tasks, *test, batch_size);
    for (int world : {2, 3, 4}) {
      auto store = c10::make_intrusive<c10d::HashStore>();
      std::vector<mtl::EvalResult> got(world);
      std::vector<int64_t> rows(world, 0);
      std::vector<std::string> errors(world);
      std::vector<std::thread> ranks;
      for (int r = 0; r < world; ++r)
        ranks.emplace_back([&, r] {
          try {
            mtl::ProcessGroup g(store, r, world, std::chrono::seconds(30));
            mtl::MultiTaskModel model = ex.make_model();
            mtl_test::copy_state(*ex.model, *model);
            CountingDataset mine(test);
            got[r] = mtl::evaluate(model, ex.tasks, mine, batch_size, &g);
            rows[r] = mine.rows;
          } catch (const std::exception& e) {
            errors[r] = e.what();
          }
        });
      for (auto& t : ranks) t.join();
      EXPECT_EQ(std::accumulate(rows.begin(), rows.end(), int64_t{0}), 101) << "every test row read once";
      for (int r = 0; r < world; ++r) {
        const std::string what = std::to_string(world) + " ranks, batch " + std::to_string(batch_size) + ", rank " +
                                 std::to_string(r);
        ASSERT_EQ(errors[r], "") << what;
        // Its contiguous share of the batches: no rank reads more than its share of the rows.
        const int64_t batches = (101 + batch_size - 1) / batch_size;
        EXPECT_LE(rows[r], ((batches + world - 1) / world) * batch_size) << what;
        ASSERT_EQ(got[r].tasks.size(), want.tasks.size()) << what;
        for (size_t t = 0; t < want.tasks.size(); ++t) {
          EXPECT_EQ(got[r].tasks[t].examples, 101) << what;
          EXPECT_NEAR(got[r].tasks[t].loss, want.tasks[t].loss, 1e-12 * std::abs(want.tasks[t].loss)) << what;
          ASSERT_EQ(got[r].tasks[t].metrics.size(), want.tasks[t].metrics.size()) << what;
          for (size_t m = 0; m < want.tasks[t].metrics.size(); ++m)
            EXPECT_EQ(got[r].tasks[t].metrics[m].value, want.tasks[t].metrics[m].value)
                << what << ", " << want.tasks[t].task << "/" << want.tasks[t].metrics[m].name;
        }
      }
    }
  }
}
