// Few-shot episodes for meta-learning (`meta:`, mtl/meta/meta_trainer.h). An episode is drawn from one of the
// run's tasks: with `ways` N > 0, N classes of the task's label (from `classes`, in a random order that becomes
// the episode's labels 0..N-1), `support` K and `query` Q examples of each; with ways 0, the task as it is, K
// support and Q query examples in all. Support and query never share an example. Every draw is a function of
// (seed, step, episode index) alone: the same episodes for any thread count, and again after a resume.
//
//   mtl::EpisodeSampler sampler(run.data->open(mtl::Split::kTrain), run.tasks, options, "meta");
//   mtl::Episode e = sampler.sample(seed, step, 0);   // e.support, e.query: batches with e.task's label only
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtl/core/batch.h"
#include "mtl/core/task.h"

namespace mtl {

class Dataset;

struct EpisodeOptions {
  int64_t ways = 0;              // N classes per episode; 0: the task as it is
  int64_t support = 1;           // K: examples per class in the support set (ways 0: in all)
  int64_t query = 15;            // examples per class in the query set (ways 0: in all)
  std::vector<int64_t> classes;  // the classes episodes draw from (empty: every class)
};

struct Episode {
  size_t task = 0;               // the run's task whose label (and head) the episode trains
  std::vector<int64_t> classes;  // the task's class behind each episode label 0..N-1 (empty for ways 0)
  Batch support, query;          // targets: the task's label only (relabelled 0..N-1 when ways > 0)
};

/// Class indices of `keys` as a config writes them (meta.classes, meta.test_classes): each a class index ("6")
/// or one of the label's class names ("Lincoln", for text labels), in order. Throws mtl::Error at `where` for a
/// name the label does not have (with the closest one); indices are checked against the data by EpisodeSampler.
std::vector<int64_t> resolve_classes(const std::vector<std::string>& keys, const LabelInfo& label,
                                     const std::string& where);

class EpisodeSampler {
 public:
  /// Reads every example's labels once. Throws mtl::Error naming `where` (the config section) when a task
  /// cannot give episodes: ways > 0 on a label that is not a class label, fewer than N classes with K + Q
  /// examples each, a class in `classes` the label does not have, or (ways 0) fewer than K + Q examples.
  EpisodeSampler(std::shared_ptr<Dataset> data, const std::vector<TaskSpec>& tasks, EpisodeOptions options,
                 const std::string& where);

  /// Episode `index` of draw `step`: its task (uniform over the tasks), classes and examples.
  Episode sample(uint64_t seed, int64_t step, int64_t index) const;
  /// The same with a given task.
  Episode sample_task(size_t task, uint64_t seed, int64_t step, int64_t index) const;

  size_t num_tasks() const { return tasks_.size(); }
  const EpisodeOptions& options() const { return options_; }

 private:
  struct TaskPool {
    std::vector<int64_t> classes;                 // the classes episodes draw from
    std::vector<std::vector<int64_t>> examples;   // per class above: its examples' indices
    std::vector<int64_t> all;                     // ways 0: every example with the label
  };
  Batch collate(const std::vector<int64_t>& indices, size_t task, const std::vector<int64_t>& labels) const;

  std::shared_ptr<Dataset> data_;
  std::vector<TaskSpec> tasks_;
  EpisodeOptions options_;
  std::vector<TaskPool> pools_;
};

/// Mean accuracy over episodes with its 95% interval half-width (1.96 x sample std / sqrt(n); 0 for n < 2).
struct MeanInterval {
  double mean = 0.0, half_width = 0.0;
  int64_t n = 0;
};
MeanInterval mean_interval(const std::vector<double>& values);

}  // namespace mtl
