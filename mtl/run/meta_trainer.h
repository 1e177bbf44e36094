// Meta-learning across tasks (`meta:`): `mtl train` of a config with a `meta:` section runs this loop instead of
// multi-task training. Each meta step draws `meta_batch_tasks` episodes (mtl/meta/episodes.h) from the training
// split, computes each episode's meta-gradient (MAML, first-order MAML or Reptile: mtl/meta/meta_gradient.h) on a
// thread's own copy of the model (episode e on thread e mod threads), averages them in episode order (the same
// numbers for any thread count, at a given intra_op_threads) and takes one step of the run's optimizer. The run directory, metrics log,
// checkpoints, `--resume` and Ctrl-C / SIGTERM behave as in multi-task training; evaluation adapts copies of
// the model to `test_episodes` episodes of the held-out `test_classes` (test split) and reports the query
// accuracy's mean and 95% interval (`meta_eval` lines).
//
//   mtl::Run run = mtl::assemble(mtl::Config::load("configs/fashion_maml.yaml"));
//   mtl::MetaTrainSummary s = mtl::meta_train(run, {});
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mtl/data/dataset.h"
#include "mtl/meta/episodes.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"

namespace mtl {

struct MetaTrainSummary {
  std::string run_dir;
  int64_t steps = 0;
  std::optional<MeanInterval> test_accuracy;  // the final evaluation (class labels)
  double seconds = 0.0;                       // meta-training time in this process
  bool interrupted = false;                   // stopped by Ctrl-C or SIGTERM (a checkpoint was written)
};

MetaTrainSummary meta_train(Run& run, const TrainRunOptions& options);

/// Test-time adaptation (`mtl adapt`, the meta-trainer's evaluation, the few-shot baselines).
struct AdaptRequest {
  EpisodeOptions episodes;   // ways, support (K shots), query, classes (empty: the config's test_classes)
  Split split = Split::kTest;
  int64_t count = 200;       // episodes
  InnerLoop inner;           // steps and lr of the adaptation (method unused)
  std::vector<std::string> adapt;  // heads, all, or parameter-name patterns
  std::vector<size_t> tasks;  // the tasks episodes come from, in turn (empty: every task)
  uint64_t seed = 0;
  int threads = 1;
};

struct AdaptResult {
  MeanInterval accuracy;       // query accuracy after adaptation, over episodes (class labels; else n = 0)
  MeanInterval query_loss;
  double seconds = 0.0;
};

/// Adapts a copy of `model` (the run's architecture) to each episode and evaluates its query set; `model` is
/// unchanged. Episodes are drawn from every task in turn (episode e from task e mod tasks).
AdaptResult evaluate_adaptation(const Run& run, const MultiTaskModel& model, const AdaptRequest& request);

/// The AdaptRequest of a run's `meta:` section: its test episodes (test_classes, test split), its adaptation.
AdaptRequest default_adapt_request(const RunConfig& rc);

/// Where `mtl adapt` starts: the config's initial weights, a checkpoint's model, or a checkpoint's trunk only
/// (every tensor outside the heads, which keep their initial weights: e.g. a multi-task run whose heads have
/// other classes than the episodes' N).
enum class AdaptStart { kScratch, kCheckpoint, kTrunk };
void load_adaptation_start(Run& run, AdaptStart start, const std::string& checkpoint);

/// Which of the model's trainable parameters `adapt` selects (heads: every head's; all; or name patterns);
/// throws mtl::Error at `where` when the selection is empty.
std::vector<bool> adapted_parameters(const MultiTaskModelImpl& model, const std::vector<std::string>& adapt,
                                     const std::string& where);

}  // namespace mtl
