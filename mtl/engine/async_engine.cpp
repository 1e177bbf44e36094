#include "mtl/engine/async_engine.h"

#include <torch/optim/sgd.h>

#include <cmath>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "mtl/core/random.h"
#include "mtl/core/threads.h"
#include "mtl/engine/shard_plan.h"
#include "mtl/optim/param_groups.h"

namespace mtl {

namespace {

std::vector<at::Tensor> trainable(const MultiTaskModel& m) {
  std::vector<at::Tensor> out;
  for (const auto& p : m->parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

// One batch in flight: its shards, how many were taken and finished, and the result being accumulated.
struct Job {
  Batch batch;
  StepContext ctx;
  std::vector<int64_t> offsets;
  size_t next_shard = 0, done_shards = 0;
  StepResult result;
  size_t shards() const { return offsets.size() - 1; }
};

// A worker's private snapshot of the weights and its twin parameter groups over aliases of the shared ones.
struct AsyncWorker {
  MultiTaskModel replica{nullptr};
  std::vector<at::Tensor> snapshot;  // the replica's trainable parameters
  std::unique_ptr<ParamGroups> groups;
  std::vector<at::Tensor> aliases;   // share storage with the model's trainable parameters
  std::vector<at::Tensor> momentum;  // per trainable parameter: the shared momentum buffer
  std::vector<double> lr;            // per trainable parameter: its group's rate for the current shard
};

class AsyncEngine : public Engine {
 public:
  AsyncEngine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting, ParamGroups& groups,
              EngineOptions options, ModelFactory make_replica)
      : model_(std::move(model)), tasks_(tasks), weighting_(weighting), groups_(groups), options_(options),
        make_replica_(std::move(make_replica)) {
    TORCH_CHECK(make_replica_, "the async engine needs replicas (private weight snapshots)");
    trainable_changed();
  }
  ~AsyncEngine() override { finish(); }

  std::vector<StepResult> step(const Batch& batch, const StepContext& ctx) override {
    if (!runner_.joinable()) start();
    auto job = std::make_shared<Job>();
    job->batch = batch;
    job->ctx = ctx;
    job->offsets = shard_offsets(batch.size, options_.threads);
    while (job->offsets.size() > 2 && job->offsets[job->offsets.size() - 2] == job->offsets.back())
      job->offsets.pop_back();  // fewer examples than workers: no empty shards
    job->result.step = ctx.step;
    job->result.examples = batch.size;
    job->result.losses.assign(tasks_.size(), 0.0);
    job->result.present.assign(tasks_.size(), false);
    job->result.weights.assign(tasks_.size(), 0.0);
    std::unique_lock<std::mutex> lock(mu_);
    // At most one batch waits for workers: the free ones start on it while others finish the last batch.
    cv_.wait(lock, [&] { return failed_ || untaken() == 0; });
    rethrow_if_failed(lock);
    jobs_.push_back(job);
    cv_.notify_all();
    return take_finished();
  }

  std::vector<StepResult> finish() override {
    if (!runner_.joinable()) return {};
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
      cv_.notify_all();
    }
    runner_.join();
    std::unique_lock<std::mutex> lock(mu_);
    closing_ = false;
    rethrow_if_failed(lock);
    return take_finished();
  }

  void trainable_changed() override;

 private:
  void start() {
    runner_ = std::thread([this] {
      try {
        pool_->run([this](int i) { work(i); });
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!failed_) error_ = std::current_exception();
        failed_ = true;
        cv_.notify_all();
      }
    });
  }

  size_t untaken() const {
    size_t n = 0;
    for (const auto& j : jobs_) n += j->shards() - j->next_shard;
    return n;
  }

  void rethrow_if_failed(std::unique_lock<std::mutex>& lock) {
    if (!failed_) return;
    lock.unlock();
    if (runner_.joinable()) {
      {
        std::lock_guard<std::mutex> l(mu_);
        closing_ = true;
        cv_.notify_all();
      }
      runner_.join();
    }
    failed_ = false;
    closing_ = false;
    jobs_.clear();
    std::rethrow_exception(error_);
  }

  // Results of the finished batches at the front of the queue, in step order.
  std::vector<StepResult> take_finished() {
    std::vector<StepResult> out;
    while (!jobs_.empty() && jobs_.front()->done_shards == jobs_.front()->shards()) {
      out.push_back(std::move(jobs_.front()->result));
      jobs_.pop_front();
    }
    return out;
  }

  void work(int i);
  void run_shard(int i, Job& job, size_t shard);
  void share_momentum();

  MultiTaskModel model_;
  const std::vector<TaskSpec>& tasks_;
  Weighting& weighting_;
  ParamGroups& groups_;
  EngineOptions options_;
  ModelFactory make_replica_;
  std::unique_ptr<WorkerPool> pool_;
  std::vector<AsyncWorker> workers_;
  std::vector<at::Tensor> params_;
  bool momentum_shared_ = false;

  std::thread runner_;  // runs the pool's workers while batches are fed
  std::mutex mu_;       // guards jobs_, the weighting method, closing_ and the failure state
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;
  bool closing_ = false, failed_ = false;
  std::exception_ptr error_;
};

void AsyncEngine::trainable_changed() {
  finish();
  params_ = trainable(model_);
  workers_.clear();
  workers_.resize(options_.threads);
  std::unordered_map<const void*, size_t> index;
  for (size_t k = 0; k < params_.size(); ++k) index[params_[k].unsafeGetTensorImpl()] = k;
  for (auto& w : workers_) {
    w.replica = make_replica_();
    w.snapshot = trainable(w.replica);
    TORCH_CHECK(w.snapshot.size() == params_.size(), "replica does not match the model");
    w.aliases.assign(params_.size(), at::Tensor());
    w.groups = std::make_unique<ParamGroups>(groups_.twin([&](const at::Tensor& p) {
      at::Tensor alias = p.detach();  // same storage, a .grad of its own
      auto it = index.find(p.unsafeGetTensorImpl());
      if (it != index.end()) w.aliases[it->second] = alias;
      return alias;
    }));
  }
  pool_ = std::make_unique<WorkerPool>(options_.threads,
                                       [n = options_.intra_op_threads](int) { set_intra_op_threads_for_this_thread(n); });
  momentum_shared_ = false;
}

// The run optimizer's momentum buffers (zeros, or restored from a checkpoint) become every worker's.
void AsyncEngine::share_momentum() {
  auto& state = groups_.optimizer().state();
  for (auto& w : workers_) w.momentum.assign(params_.size(), at::Tensor());
  for (size_t k = 0; k < params_.size(); ++k) {
    const std::string key = c10::guts::to_string(params_[k].unsafeGetTensorImpl());
    auto it = state.find(key);
    if (it == state.end())
      it = state.emplace(key, std::make_unique<torch::optim::SGDParamState>()).first;
    auto& s = static_cast<torch::optim::SGDParamState&>(*it->second);
    if (!s.momentum_buffer().defined()) s.momentum_buffer(at::zeros_like(params_[k]).detach());
    for (auto& w : workers_) {
      if (!w.aliases[k].defined()) continue;
      auto twin = std::make_unique<torch::optim::SGDParamState>();
      twin->momentum_buffer(s.momentum_buffer());
      w.groups->optimizer().state()[c10::guts::to_string(w.aliases[k].unsafeGetTensorImpl())] = std::move(twin);
      w.momentum[k] = s.momentum_buffer();
    }
  }
  momentum_shared_ = true;
}

void AsyncEngine::work(int i) {
  torch::AutoGradMode grad_mode(true);
  while (true) {
    std::shared_ptr<Job> job;
    size_t shard = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return closing_ || failed_ || untaken() > 0; });
      if (failed_ || (closing_ && untaken() == 0)) return;
      if (!momentum_shared_) share_momentum();
      for (auto& j : jobs_)
        if (j->next_shard < j->shards()) {
          job = j;
          shard = j->next_shard++;
          break;
        }
      cv_.notify_all();  // step() may queue the next batch once this one is fully taken
    }
    try {
      run_shard(i, *job, shard);
    } catch (...) {  // stop every worker; step() or finish() rethrows on the caller's thread
      std::lock_guard<std::mutex> lock(mu_);
      if (!failed_) error_ = std::current_exception();
      failed_ = true;
      cv_.notify_all();
      return;
    }
  }
}

void AsyncEngine::run_shard(int i, Job& job, size_t shard_index) {
  AsyncWorker& w = workers_[i];
  const size_t T = tasks_.size();
  const int64_t lo = job.offsets[shard_index], hi = job.offsets[shard_index + 1];
  const double share = static_cast<double>(hi - lo) / static_cast<double>(job.batch.size);
  const double mu = groups_.options().momentum;
  const double mu_shard = mu > 0 ? std::pow(mu, share) : 0.0;
  const double lr_factor = mu > 0 ? (1.0 - mu_shard) / (1.0 - mu) : 1.0;
  const double lr = w.groups->set_step(job.ctx.step);
  w.groups->scale_step(lr_factor, mu_shard, share);
  w.lr = w.groups->parameter_rates(w.aliases);
  Batch shard = job.batch.slice(lo, hi);
  ThreadGeneratorScope rng(StepInfo{options_.seed, job.ctx.step, job.ctx.epoch}, shard_index);
  {
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < params_.size(); ++k) w.snapshot[k].copy_(params_[k]);
    // Look-ahead: while this shard is computed, the other workers' updates land, each moving the weights by
    // about lr * mu_shard * buffer; evaluate the gradient where the weights will be.
    if (options_.lookahead && mu > 0 && options_.threads > 1)
      for (size_t k = 0; k < params_.size(); ++k)
        w.snapshot[k].add_(w.momentum[k], -(options_.threads - 1) * w.lr[k] * mu_shard);
  }
  w.replica->train(model_->is_training());
  ModelOutput out;
  {
    PrecisionScope autocast(options_.precision);
    out = w.replica->forward(shard.inputs);
  }
  std::vector<at::Tensor> losses = task_losses(tasks_, out, shard);
  std::vector<double> values(T, 0.0);
  std::vector<bool> present(T, false);
  for (size_t t = 0; t < T; ++t)
    if (losses[t].defined()) {
      present[t] = true;
      values[t] = losses[t].item<double>();
    }
  std::vector<double> weights;
  {
    std::lock_guard<std::mutex> lock(mu_);
    weights = loss_weights_for_step(weighting_, values, present, job.ctx);
  }
  at::Tensor objective;
  for (size_t t = 0; t < T; ++t) {
    if (!present[t]) continue;
    at::Tensor term = losses[t] * (weights[t] * share);
    objective = objective.defined() ? objective + term : term;
  }
  if (objective.defined()) {
    auto grads = torch::autograd::grad({objective}, w.snapshot, {}, false, false, /*allow_unused=*/true);
    for (size_t k = 0; k < params_.size(); ++k)
      if (w.aliases[k].defined()) w.aliases[k].mutable_grad() = grads[k];
    w.groups->optimizer().step();  // lock-free (Hogwild!) on the shared storage
  }
  std::lock_guard<std::mutex> lock(mu_);
  StepResult& r = job.result;
  for (size_t t = 0; t < T; ++t) {
    if (!present[t]) continue;
    // Per-task loss of the batch: shard losses weighted by shard size (as sync reduces them).
    r.present[t] = true;
    r.losses[t] += share * values[t];
    r.weights[t] += share * weights[t];
  }
  r.lr = lr;
  if (++job.done_shards == job.shards()) {
    r.total_loss = 0;
    for (size_t t = 0; t < T; ++t) r.total_loss += r.weights[t] * r.losses[t];
  }
  cv_.notify_all();
}

}  // namespace

std::unique_ptr<Engine> make_async_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                          Weighting& weighting, ParamGroups& groups, EngineOptions options,
                                          ModelFactory make_replica) {
  TORCH_CHECK(options.threads >= 1, "at least one worker thread");
  TORCH_CHECK(weighting.needs() == GradientKind::kWeightedLoss, "async updates support loss-based weighting only");
  return std::make_unique<AsyncEngine>(std::move(model), tasks, weighting, groups, options, std::move(make_replica));
}

}  // namespace mtl
