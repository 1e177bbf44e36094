#include "mtl/engine/async_engine.h"

#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>

#include "mtl/core/random.h"
#include "mtl/core/threads.h"
#include "mtl/engine/parallel_engine.h"

namespace mtl {

void run_async(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting,
               const OptimizerOptions& sgd, const AsyncOptions& options, Loader& loader, int64_t first_step,
               int64_t epoch, const std::function<double(int64_t)>& lr_for, const AsyncStepCallback& on_step,
               const std::function<MultiTaskModel()>& make_replica) {
  TORCH_CHECK(sgd.type == "sgd", "async updates support SGD only");
  std::vector<at::Tensor> params;
  for (auto& p : model->parameters())
    if (p.requires_grad()) params.push_back(p);
  // Each batch is split into `threads` shards, as the sync engine splits it; a worker takes the next shard,
  // computes that shard's share of the batch gradient on a private snapshot of the weights and applies it
  // at once, lock-free (Hogwild!). Without momentum the shard updates of a batch sum to the sync step, only
  // computed on weights that are one or two shard updates old. With momentum, each shard update decays the
  // shared buffer by mu^(share) and moves by lr * (1 - mu^share) / (1 - mu) times the buffer, so that per
  // batch the buffer decays by mu and, in steady state, the weights move as far as sync SGD moves them.
  // Measured on 2 cores (LeNet, 3 epochs of 12k MultiFashion, lr 0.01, momentum 0.9, 6 seeds; README):
  // whole-batch updates per worker, the textbook form, trailed sync by 3-7 accuracy points; shard updates
  // by ~2.8; shard updates with the momentum look-ahead below by ~0.8. Without momentum shard updates
  // match sync.
  struct Pending {
    Batch batch;
    std::vector<int64_t> offsets;
    int64_t step = 0;
    size_t next_shard = 0, done_shards = 0;
    StepResult result;
    double lr = 0;
  };
  std::mutex mu;  // guards the loader, the pending batches, the weighting, the step counter and the callback
  std::shared_ptr<Pending> current;
  int64_t next_step = first_step;
  bool loader_done = false;
  std::atomic<bool> stop{false};
  const size_t T = tasks.size();
  // One momentum buffer per parameter, shared and updated lock-free like the weights. (Per-worker buffers
  // spread each gradient's momentum over `threads` times more updates and trained measurably worse.)
  std::vector<at::Tensor> momentum;
  for (auto& p : params) momentum.push_back(at::zeros_like(p).detach());
  // Private weight snapshots, one model per worker.
  std::vector<MultiTaskModel> replicas;
  std::vector<std::vector<at::Tensor>> replica_params;
  for (int i = 0; i < options.threads; ++i) {
    replicas.push_back(make_replica());
    replicas.back()->train(model->is_training());
    std::vector<at::Tensor> ps;
    for (auto& p : replicas.back()->parameters())
      if (p.requires_grad()) ps.push_back(p);
    TORCH_CHECK(ps.size() == params.size(), "replica does not match the model");
    replica_params.push_back(ps);
  }
  WorkerPool pool(options.threads, [n = options.intra_op_threads](int) { set_intra_op_threads_for_this_thread(n); });
  pool.run([&](int i) {
    torch::AutoGradMode grad_mode(true);
    while (!stop) {
      std::shared_ptr<Pending> job;
      size_t shard_index;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop) return;
        if (!current || current->next_shard + 1 >= current->offsets.size()) {
          current.reset();
          Batch b;
          if (loader_done || !loader.next(b)) {
            loader_done = true;
            return;
          }
          current = std::make_shared<Pending>();
          current->offsets = shard_offsets(b.size, options.threads);
          while (current->offsets.size() > 2 && current->offsets[current->offsets.size() - 2] ==
                                                    current->offsets.back())
            current->offsets.pop_back();  // fewer examples than workers: no empty shards
          current->batch = std::move(b);
          current->step = next_step++;
          current->lr = lr_for(current->step);
          current->result.losses.assign(T, 0.0);
          current->result.present.assign(T, false);
          current->result.weights.assign(T, 0.0);
        }
        job = current;
        shard_index = current->next_shard++;
      }
      const int64_t lo = job->offsets[shard_index], hi = job->offsets[shard_index + 1];
      const double share = static_cast<double>(hi - lo) / static_cast<double>(job->batch.size);
      const double mu_shard = sgd.momentum > 0 ? std::pow(sgd.momentum, share) : 0.0;
      const double lr = sgd.momentum > 0 ? job->lr * (1.0 - mu_shard) / (1.0 - sgd.momentum) : job->lr;
      Batch shard = job->batch.slice(lo, hi);
      ThreadGeneratorScope rng(make_generator(options.seed, static_cast<uint64_t>(job->step), shard_index));
      {
        torch::NoGradGuard no_grad;
        for (size_t k = 0; k < params.size(); ++k) replica_params[i][k].copy_(params[k]);
        // Look-ahead: while this shard is computed, the other workers' updates land, each moving the
        // weights by about lr * mu_shard * buffer; evaluate the gradient where the weights will be.
        if (options.lookahead && sgd.momentum > 0 && options.threads > 1)
          for (size_t k = 0; k < params.size(); ++k)
            replica_params[i][k].add_(momentum[k], -(options.threads - 1) * lr * mu_shard);
      }
      ModelOutput out = replicas[i]->forward(shard.inputs);
      std::vector<at::Tensor> losses = task_losses(tasks, out.outputs, shard);
      std::vector<double> values(T, 0.0);
      std::vector<bool> present(T, false);
      for (size_t t = 0; t < T; ++t)
        if (losses[t].defined()) {
          present[t] = true;
          values[t] = losses[t].item<double>();
        }
      std::vector<double> weights;
      {
        std::lock_guard<std::mutex> lock(mu);
        weights = loss_weights_for_step(weighting, values, present, StepContext{job->step, epoch, {}});
      }
      at::Tensor objective;
      for (size_t t = 0; t < T; ++t) {
        if (!present[t]) continue;
        at::Tensor term = losses[t] * (weights[t] * share);
        objective = objective.defined() ? objective + term : term;
      }
      if (objective.defined()) {
        auto grads = torch::autograd::grad({objective}, replica_params[i], {}, false, false, /*allow_unused=*/true);
        torch::NoGradGuard no_grad;
        for (size_t k = 0; k < params.size(); ++k) {
          if (!grads[k].defined()) continue;
          at::Tensor g = grads[k];
          // As the sync optimizer's parameter groups: no decay on biases and norm scales unless asked.
          if (sgd.weight_decay > 0 && (sgd.decay_bias_and_norm || params[k].dim() > 1))
            g = g + (sgd.weight_decay * share) * params[k];
          at::Tensor d = g;
          if (sgd.momentum > 0) {
            at::Tensor& buf = momentum[k];
            buf.mul_(mu_shard).add_(g);
            d = sgd.nesterov ? g + mu_shard * buf : buf;
          }
          params[k].add_(d, -lr);  // lock-free (Hogwild!)
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      StepResult& r = job->result;
      for (size_t t = 0; t < T; ++t) {
        if (!present[t]) continue;
        // Per-task loss of the batch: shard losses weighted by shard size (as sync reduces them).
        r.present[t] = true;
        r.losses[t] += share * values[t];
        r.weights[t] += share * weights[t];
      }
      if (++job->done_shards + 1 == job->offsets.size()) {
        r.total_loss = 0;
        for (size_t t = 0; t < T; ++t) r.total_loss += r.weights[t] * r.losses[t];
        if (!on_step(job->batch, r, job->lr)) stop = true;
      }
    }
  });
}

}  // namespace mtl
