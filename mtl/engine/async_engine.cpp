#include "mtl/engine/async_engine.h"

#include <atomic>
#include <mutex>

#include "mtl/core/random.h"
#include "mtl/core/threads.h"

namespace mtl {

void run_async(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting,
               const OptimizerOptions& sgd, const AsyncOptions& options, Loader& loader, int64_t first_step,
               int64_t epoch, const std::function<double(int64_t)>& lr_for, const AsyncStepCallback& on_step,
               const std::function<MultiTaskModel()>& make_replica) {
  TORCH_CHECK(sgd.type == "sgd", "async updates support SGD only");
  std::vector<at::Tensor> params;
  for (auto& p : model->parameters())
    if (p.requires_grad()) params.push_back(p);
  std::mutex mu;  // guards the loader, the weighting, the step counter and the callback
  int64_t next_step = first_step;
  std::atomic<bool> stop{false};
  // One momentum buffer per parameter, shared and updated lock-free like the weights: the update sequence
  // is then that of sync SGD with momentum, only with stale gradients. (Per-worker buffers spread each
  // gradient's momentum over `threads` times more updates and trained measurably worse.)
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
      Batch batch;
      int64_t step;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop || !loader.next(batch)) return;
        step = next_step++;
      }
      ThreadGeneratorScope rng(make_generator(options.seed, static_cast<uint64_t>(step), 0));
      {
        torch::NoGradGuard no_grad;
        for (size_t k = 0; k < params.size(); ++k) replica_params[i][k].copy_(params[k]);
      }
      ModelOutput out = replicas[i]->forward(batch.inputs);
      std::vector<at::Tensor> losses = task_losses(tasks, out.outputs, batch);
      StepResult r;
      r.losses.assign(tasks.size(), 0.0);
      r.present.assign(tasks.size(), false);
      for (size_t t = 0; t < tasks.size(); ++t)
        if (losses[t].defined()) {
          r.present[t] = true;
          r.losses[t] = losses[t].item<double>();
        }
      {
        std::lock_guard<std::mutex> lock(mu);
        r.weights = weighting.loss_weights(r.losses, StepContext{step, epoch});
      }
      at::Tensor objective;
      for (size_t t = 0; t < tasks.size(); ++t) {
        if (!r.present[t]) continue;
        r.total_loss += r.weights[t] * r.losses[t];
        at::Tensor term = losses[t] * r.weights[t];
        objective = objective.defined() ? objective + term : term;
      }
      if (!objective.defined()) continue;
      auto grads = torch::autograd::grad({objective}, replica_params[i], {}, false, false, /*allow_unused=*/true);
      double lr = lr_for(step);
      {
        torch::NoGradGuard no_grad;
        for (size_t k = 0; k < params.size(); ++k) {
          if (!grads[k].defined()) continue;
          at::Tensor g = grads[k];
          if (sgd.weight_decay > 0) g = g + sgd.weight_decay * params[k];
          at::Tensor d = g;
          if (sgd.momentum > 0) {
            at::Tensor& buf = momentum[k];
            buf.mul_(sgd.momentum).add_(g);
            d = sgd.nesterov ? g + sgd.momentum * buf : buf;
          }
          params[k].add_(d, -lr);  // lock-free (Hogwild!)
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      if (!on_step(batch, r, lr)) stop = true;
    }
  });
}

}  // namespace mtl
