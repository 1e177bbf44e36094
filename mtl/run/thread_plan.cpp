#include "mtl/run/thread_plan.h"

#include <ATen/Parallel.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "mtl/engine/parallel_engine.h"
#include "mtl/run/assembler.h"
#include "mtl/weighting/fixed.h"
#include "mtl/weighting/gradient_method.h"

namespace mtl {

namespace {

// Stands in for a gradient-based method in the probe: the same passes, no state.
class SumOfRows : public GradientWeighting {
 public:
  explicit SumOfRows(GradientSpace space) { set_space(space); }
  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) override { return G.sum(0); }
};

std::unique_ptr<Weighting> stand_in(const Weighting& w, size_t tasks) {
  switch (w.needs()) {
    case GradientKind::kSharedTaskGrads:
      return std::make_unique<SumOfRows>(GradientSpace::kParameters);
    case GradientKind::kRepresentationGrads:
      return std::make_unique<SumOfRows>(GradientSpace::kRepresentation);
    default:
      return std::make_unique<FixedWeighting>(static_cast<int64_t>(tasks));
  }
}

}  // namespace

std::vector<ThreadPlan> candidate_thread_plans(int cores) {
  std::vector<ThreadPlan> out;
  for (int w = std::max(cores, 1); w >= 1; --w)
    if (cores % w == 0) out.push_back({w, cores / w, 0.0});
  return out;
}

std::vector<ThreadPlan> probe_thread_plans(Run& run, const Batch& batch, int cores, int repeats) {
  std::vector<ThreadPlan> plans = candidate_thread_plans(cores);
  if (plans.size() < 2) return plans;
  std::unique_ptr<Weighting> weighting = stand_in(*run.weighting, run.tasks.size());
  // Gradients are overwritten by the first real step; buffers (BatchNorm statistics) are restored here.
  std::vector<at::Tensor> buffers;
  {
    at::NoGradGuard no_grad;
    for (const auto& b : run.model->buffers()) buffers.push_back(b.clone());
  }
  const int saved_threads = at::get_num_threads();
  std::vector<std::unique_ptr<GradientEngine>> engines;
  for (const ThreadPlan& plan : plans) {
    EngineOptions options;
    options.threads = plan.workers;
    options.intra_op_threads = plan.intra_op_threads;
    options.seed = run.config.engine.seed;
    engines.push_back(make_parallel_engine(run.model, run.tasks, *weighting, options, run.make_model));
  }
  // Round-robin over the plans, so drift in the machine's speed (other processes, frequency) hits every plan
  // alike; the first rounds warm caches, the allocator and each plan's threads; each plan keeps its median.
  constexpr int kWarmup = 2;
  std::vector<std::vector<double>> times(plans.size());
  for (int round = 0; round < kWarmup + std::max(repeats, 1); ++round) {
    for (size_t i = 0; i < plans.size(); ++i) {
      at::set_num_threads(plans[i].workers * plans[i].intra_op_threads);
      const auto start = std::chrono::steady_clock::now();
      engines[i]->compute_gradients(batch, StepContext{});
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (round >= kWarmup) times[i].push_back(ms);
    }
  }
  for (size_t i = 0; i < plans.size(); ++i) {
    std::vector<double>& t = times[i];
    std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
    plans[i].step_ms = t[t.size() / 2];
  }
  engines.clear();
  at::set_num_threads(saved_threads);
  {
    at::NoGradGuard no_grad;
    size_t k = 0;
    for (auto& b : run.model->buffers()) b.copy_(buffers[k++]);
  }
  for (auto& p : run.model->parameters()) p.mutable_grad() = at::Tensor();
  std::stable_sort(plans.begin(), plans.end(), [](const ThreadPlan& a, const ThreadPlan& b) { return a.step_ms < b.step_ms; });
  return plans;
}

std::string describe_thread_plans(const std::vector<ThreadPlan>& probed) {
  if (probed.empty()) return "";
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(1);
  const ThreadPlan& best = probed.front();
  out << best.workers << (best.workers == 1 ? " worker x " : " workers x ") << best.intra_op_threads
      << " intra-op thread" << (best.intra_op_threads == 1 ? "" : "s");
  if (best.step_ms <= 0) return out.str();
  out << " (probe, ms per gradient step:";
  for (const ThreadPlan& p : probed) out << " " << p.workers << "x" << p.intra_op_threads << " " << p.step_ms;
  out << ")";
  return out.str();
}

}  // namespace mtl
