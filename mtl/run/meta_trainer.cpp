#include "mtl/run/meta_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "mtl/core/name_pattern.h"
#include "mtl/core/stop_signal.h"
#include "mtl/core/threads.h"
#include "mtl/engine/replicas.h"
#include "mtl/io/checkpoint.h"
#include "mtl/optim/param_groups.h"
#include "mtl/run/observers.h"
#include "mtl/run/run_dir.h"

namespace fs = std::filesystem;

namespace mtl {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A thread's own model: the run's architecture with its own parameter storage, set to the meta-parameters
// before each episode (the inner loop changes them).
struct ModelCopy {
  MultiTaskModel model{nullptr};
  std::vector<at::Tensor> params;  // trainable, in the meta-model's order

  ModelCopy(const Run& run, const MultiTaskModel& like) : model(run.make_model()) {
    model->train(like->is_training());
    auto theirs = like->named_parameters();
    for (auto& kv : model->named_parameters()) kv.value().set_requires_grad(theirs[kv.key()].requires_grad());
    params = trainable_parameters(*model);
  }
  void load(const std::vector<at::Tensor>& from) {
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < params.size(); ++k) params[k].copy_(from[k]);
  }
};

// Runs fn(copy, e) for every e < count, episode e on worker e mod workers.
void for_each_episode(WorkerPool& pool, std::vector<ModelCopy>& copies, int64_t count,
                      const std::function<void(ModelCopy&, int64_t)>& fn) {
  pool.run([&](int w) {
    for (int64_t e = w; e < count; e += pool.size()) fn(copies[static_cast<size_t>(w)], e);
  });
}

std::vector<ModelCopy> make_copies(const Run& run, const MultiTaskModel& model, int n) {
  std::vector<ModelCopy> copies;
  for (int i = 0; i < n; ++i) copies.emplace_back(run, model);
  return copies;
}

std::string shape_text(at::IntArrayRef s) {
  std::ostringstream out;
  out << s;
  return out.str();
}

double mean_of(const std::vector<EpisodeGradient>& r, double EpisodeGradient::*field) {
  double s = 0.0;
  for (const auto& g : r) s += g.*field / double(r.size());
  return s;
}

// Each parameter's .grad becomes the mean of the episodes' meta-gradients, summed in episode order.
void set_mean_gradients(const std::vector<at::Tensor>& params, const std::vector<EpisodeGradient>& results) {
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < params.size(); ++k) {
    at::Tensor g = results[0].grads[k].clone();
    for (size_t e = 1; e < results.size(); ++e) g.add_(results[e].grads[k]);
    params[k].mutable_grad() = g.div_(double(results.size()));
  }
}

// The `meta_step` line of the metrics log (episode means); returns the mean query loss.
double log_meta_step(MetricsLog& log, int64_t step, const std::vector<EpisodeGradient>& results, double lr) {
  MetricValues v{{"support_loss", mean_of(results, &EpisodeGradient::support_loss)},
                 {"query_loss", mean_of(results, &EpisodeGradient::query_loss)}, {"lr", lr}};
  if (results[0].query_accuracy >= 0) v.push_back({"query_accuracy", mean_of(results, &EpisodeGradient::query_accuracy)});
  log.write("meta_step", step, 0, v);
  return v[1].second;
}

int episode_threads(const RunConfig& rc) { return std::max(1, rc.engine.threads); }

// The meta-batch's episodes, each on a copy of the meta-model (one copy per worker thread): sample, adapt,
// and return the meta-gradient of the query loss.
class EpisodeRunner {
 public:
  EpisodeRunner(const Run& run, const std::vector<at::Tensor>& params, const EpisodeSampler& sampler,
                const std::vector<bool>& adapted)
      : run_(run),
        params_(params),
        sampler_(sampler),
        adapted_(adapted),
        copies_(make_copies(run, run.model, episode_threads(run.config))),
        pool_(episode_threads(run.config),
              [n = run.config.engine.intra_op_threads](int) { set_intra_op_threads_for_this_thread(n); }) {}

  std::vector<EpisodeGradient> gradients(int64_t step) {
    const MetaConfig& mc = run_.config.meta;
    const uint64_t seed = static_cast<uint64_t>(run_.config.trainer.seed);
    std::vector<EpisodeGradient> results(static_cast<size_t>(mc.meta_batch_tasks));
    for_each_episode(pool_, copies_, mc.meta_batch_tasks, [&](ModelCopy& c, int64_t e) {
      c.load(params_);
      const Episode episode = sampler_.sample(seed, step, e);
      results[static_cast<size_t>(e)] = episode_meta_gradient(*c.model, c.params, adapted_, run_.tasks[episode.task],
                                                              episode, mc.inner, EpisodeStream{seed, step, e});
    });
    return results;
  }

 private:
  const Run& run_;
  const std::vector<at::Tensor>& params_;
  const EpisodeSampler& sampler_;
  const std::vector<bool>& adapted_;
  std::vector<ModelCopy> copies_;
  WorkerPool pool_;
};

const char* method_name(MetaMethod m) {
  return m == MetaMethod::kMaml ? "maml" : m == MetaMethod::kFomaml ? "fomaml" : "reptile";
}

}  // namespace

std::vector<bool> adapted_parameters(const MultiTaskModelImpl& model, const std::vector<std::string>& adapt,
                                     const std::string& where) {
  std::vector<bool> out;
  bool any = false;
  for (const auto& kv : model.named_parameters()) {
    if (!kv.value().requires_grad()) continue;
    bool mine = false;
    if (adapt.size() == 1 && adapt[0] == "all") mine = true;
    else if (adapt.size() == 1 && adapt[0] == "heads") mine = kv.key().rfind("heads.", 0) == 0;
    else mine = name_matches_any(adapt, kv.key());
    out.push_back(mine);
    any = any || mine;
  }
  if (!any) throw Error(where, "adapt selects no trainable parameter (expected heads, all, or name patterns such as heads.*)");
  return out;
}

AdaptResult evaluate_adaptation(const Run& run, const MultiTaskModel& model, const AdaptRequest& request) {
  const auto start = Clock::now();
  const std::string where = run.config.meta.node.defined() ? run.config.meta.node.where() : run.config.source.file();
  EpisodeSampler sampler(run.data->open(request.split), run.tasks, request.episodes, where);
  const std::vector<bool> adapted = adapted_parameters(*model, request.adapt, where);
  const std::vector<at::Tensor> meta = trainable_parameters(*model);
  std::vector<ModelCopy> copies = make_copies(run, model, request.threads);
  for (auto& c : copies) c.model->train(true);
  WorkerPool pool(request.threads, [](int) { set_intra_op_threads_for_this_thread(1); });
  std::vector<EpisodeGradient> results(static_cast<size_t>(request.count));
  std::vector<size_t> tasks = request.tasks;
  if (tasks.empty())
    for (size_t t = 0; t < sampler.num_tasks(); ++t) tasks.push_back(t);
  for_each_episode(pool, copies, request.count, [&](ModelCopy& c, int64_t e) {
    c.load(meta);
    const size_t task = tasks[static_cast<size_t>(e) % tasks.size()];
    Episode ep = sampler.sample_task(task, request.seed, /*step=*/-1, e);
    results[static_cast<size_t>(e)] = adapt_and_evaluate(*c.model, c.params, adapted, run.tasks[task], ep,
                                                         request.inner, EpisodeStream{request.seed, -1, e});
  });
  AdaptResult out;
  std::vector<double> acc, loss;
  for (const auto& r : results) {
    if (r.query_accuracy >= 0) acc.push_back(r.query_accuracy);
    loss.push_back(r.query_loss);
  }
  out.accuracy = mean_interval(acc);
  out.query_loss = mean_interval(loss);
  out.seconds = seconds_since(start);
  return out;
}

AdaptRequest default_adapt_request(const RunConfig& rc) {
  const MetaConfig& mc = rc.meta;
  AdaptRequest r;
  r.episodes = mc.episodes;
  r.episodes.classes = mc.test_classes;
  r.count = mc.test_episodes;
  r.inner = mc.inner;
  r.inner.steps = mc.test_inner_steps;
  r.adapt = mc.adapt;
  r.seed = static_cast<uint64_t>(rc.trainer.seed);
  r.threads = std::max(1, rc.engine.threads);
  return r;
}

void load_adaptation_start(Run& run, AdaptStart start, const std::string& checkpoint) {
  if (start == AdaptStart::kScratch) return;
  const std::string path = resolve_checkpoint_path(checkpoint);
  if (start == AdaptStart::kCheckpoint) {
    load_checkpoint(path, CheckpointRefs{run.model.get(), nullptr, nullptr}, /*restore_rng=*/false);
    return;
  }
  const NamedTensors saved = read_checkpoint_model_tensors(path);
  std::map<std::string, at::Tensor> by_name(saved.begin(), saved.end());
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, at::Tensor& to) {
    if (name.rfind("heads.", 0) == 0) return;
    auto it = by_name.find(name);
    if (it == by_name.end()) throw Error(path, "the checkpoint has no tensor '" + name + "' for the trunk");
    if (it->second.sizes() != to.sizes())
      throw Error(path, "tensor '" + name + "' has shape " + shape_text(it->second.sizes()) + ", the trunk needs " +
                            shape_text(to.sizes()));
    to.copy_(it->second);
  };
  for (auto& kv : run.model->named_parameters()) copy(kv.key(), kv.value());
  for (auto& kv : run.model->named_buffers()) copy(kv.key(), kv.value());
}

namespace {

// Scores the meta-model on the held-out episodes, logs a meta_eval line and returns the accuracy (if any).
std::optional<MeanInterval> evaluate_and_log(const Run& run, const AdaptRequest& eval, MetricsLog& log, int64_t step,
                                             bool progress) {
  AdaptResult r = evaluate_adaptation(run, run.model, eval);
  MetricValues v{{"query_loss", r.query_loss.mean}, {"episodes", double(eval.count)}};
  if (r.accuracy.n == 0) {
    log.write("meta_eval", step, 0, v);
    return std::nullopt;
  }
  v.push_back({"accuracy", r.accuracy.mean});
  v.push_back({"accuracy_ci95", r.accuracy.half_width});
  log.write("meta_eval", step, 0, v);
  if (progress)
    std::cerr << "\nmeta step " << step << ": held-out " << eval.episodes.ways << "-way " << eval.episodes.support
              << "-shot accuracy " << r.accuracy.mean << " +- " << r.accuracy.half_width << " (" << eval.count
              << " episodes)\n";
  return r.accuracy;
}

}  // namespace

MetaTrainSummary meta_train(Run& run, const TrainRunOptions& options) {
  const RunConfig& rc = run.config;
  const MetaConfig& mc = rc.meta;
  TORCH_CHECK(mc.enabled, "meta_train needs a config with a meta: section");
  if (options.group) throw Error(mc.node.where(), "meta-learning runs in one process (it has no distributed form)");
  configure_torch_threads(rc.engine, rc.trainer.deterministic);
  EpisodeSampler sampler(run.data->open(Split::kTrain), run.tasks, mc.episodes, mc.node.where());
  const std::vector<bool> adapted = adapted_parameters(*run.model, mc.adapt, mc.node.where("adapt"));
  const AdaptRequest eval = default_adapt_request(rc);
  {  // the evaluation's episodes are checked before anything is written
    EpisodeSampler check(run.data->open(Split::kTest), run.tasks, eval.episodes, mc.node.where("test_classes"));
  }

  MetaTrainSummary summary;
  std::optional<DirLock> lock;
  summary.run_dir = prepare_run_dir(run, options.resume_dir, lock);
  if (options.progress)
    std::cerr << "mtl: meta-training '" << rc.name << "' ("
              << method_name(mc.inner.method) << ", " << run.tasks.size() << " task(s), " << episode_threads(rc) << " thread(s)) in " << summary.run_dir << "\n";
  ParamGroups groups = build_param_groups(rc.optimizer, rc.scheduler, *run.model, *run.weighting);
  groups.set_horizon(mc.steps, mc.steps);
  Checkpointer checkpointer((fs::path(summary.run_dir) / "checkpoint.pt").string(),
                            CheckpointRefs{run.model.get(), &groups.optimizer(), run.weighting.get()},
                            rc.trainer.checkpoint_interval);
  TrainPosition pos;
  if (!options.resume_dir.empty()) {
    pos = checkpointer.load();
    if (options.progress) std::cerr << "resuming " << summary.run_dir << " at meta step " << pos.step << "\n";
  }
  MetricsLog log = open_metrics_log(rc, summary.run_dir, true, options.resume_dir.empty() ? 0 : pos.log_bytes);
  checkpointer.record_log_size_of(&log);

  const std::vector<at::Tensor> params = trainable_parameters(*run.model);
  EpisodeRunner episodes(run, params, sampler, adapted);
  auto evaluate = [&](int64_t step) {
    if (auto accuracy = evaluate_and_log(run, eval, log, step, options.progress)) summary.test_accuracy = accuracy;
  };

  StopSignalScope stop_signals;
  const auto start = Clock::now();
  for (; pos.step < mc.steps; ++pos.step) {
    if (stop_requested()) {
      checkpointer.save(pos);
      summary.interrupted = true;
      std::cerr << "\n" << (last_stop_signal() == SIGTERM ? "stopped by SIGTERM" : "interrupted")
                << ": checkpoint at meta step " << pos.step << "; continue with --resume " << summary.run_dir << "\n";
      break;
    }
    const int64_t step = pos.step;
    const std::vector<EpisodeGradient> results = episodes.gradients(step);
    set_mean_gradients(params, results);
    const double lr = groups.set_step(step);
    groups.before_step();
    groups.optimizer().step();
    groups.after_step();
    const double query_loss = log_meta_step(log, step + 1, results, lr);
    if (options.progress && ((step + 1) % 10 == 0 || step + 1 == mc.steps))
      std::cerr << "\rmeta step " << step + 1 << "/" << mc.steps << ": query loss " << query_loss << std::flush;
    TrainPosition after = pos;
    after.step = step + 1;
    if (rc.trainer.checkpoint_interval > 0 && after.step % rc.trainer.checkpoint_interval == 0) checkpointer.save(after);
    if (mc.eval_interval > 0 && after.step % mc.eval_interval == 0 && after.step < mc.steps) evaluate(after.step);
  }
  summary.seconds = seconds_since(start);
  summary.steps = pos.step;
  if (summary.interrupted) return summary;
  if (checkpointer.saved_step() != pos.step) checkpointer.save(pos);
  evaluate(pos.step);
  return summary;
}

}  // namespace mtl
