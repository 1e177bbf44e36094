#include "mtl/meta/meta_gradient.h"

#include <torch/torch.h>

#include "mtl/core/random.h"
#include "mtl/engine/engine.h"

namespace mtl {

namespace {

// The episode task's loss on `batch` at the model's current parameters; dropout from inner step `i`'s stream.
struct EpisodeLoss {
  MultiTaskModelImpl& model;
  const TaskSpec& task;
  size_t t;
  EpisodeStream stream;

  at::Tensor operator()(const Batch& batch, int64_t i, at::Tensor* output = nullptr) const {
    ThreadGeneratorScope rng(StepInfo{stream.seed, stream.step, 0},
                             (static_cast<uint64_t>(stream.episode) << 20) + static_cast<uint64_t>(i));
    TrunkOutput trunk = model.trunk(batch.inputs);
    at::Tensor out = model.head_output(t, trunk);
    if (output) *output = out;
    return task_loss(task, out, batch);
  }
};

double accuracy(const TaskSpec& task, const at::Tensor& out, const Batch& batch) {
  if (task.label.kind != LabelKind::kClass) return -1.0;
  const at::Tensor& y = batch.targets.at(task.label.name);
  return out.argmax(1).eq(y).to(at::kDouble).mean().item<double>();
}

std::vector<at::Tensor> select(const std::vector<at::Tensor>& params, const std::vector<bool>& adapted) {
  std::vector<at::Tensor> out;
  for (size_t k = 0; k < params.size(); ++k)
    if (adapted[k]) out.push_back(params[k]);
  return out;
}

// `steps` SGD steps on the support set for the adapted parameters; `snapshots` (when given) gets their values
// before each step. Returns the first step's support loss.
double inner_steps(const EpisodeLoss& loss, const std::vector<at::Tensor>& a, const Batch& support,
                   const InnerLoop& inner, std::vector<std::vector<at::Tensor>>* snapshots) {
  double first = 0.0;
  for (int64_t i = 0; i < inner.steps; ++i) {
    if (snapshots) {
      std::vector<at::Tensor> snap;
      for (const auto& p : a) snap.push_back(p.detach().clone());
      snapshots->push_back(std::move(snap));
    }
    torch::AutoGradMode grad_mode(true);
    at::Tensor l = loss(support, i);
    if (i == 0) first = l.item<double>();
    auto g = torch::autograd::grad({l}, a, {}, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
    torch::NoGradGuard no_grad;
    for (size_t j = 0; j < a.size(); ++j)
      if (g[j].defined()) a[j].sub_(g[j], inner.lr);
  }
  if (inner.steps == 0) {
    torch::NoGradGuard no_grad;
    first = loss(support, 0).item<double>();
  }
  return first;
}

std::vector<at::Tensor> zeros_where_undefined(std::vector<at::Tensor> g, const std::vector<at::Tensor>& params) {
  for (size_t k = 0; k < g.size(); ++k)
    g[k] = g[k].defined() ? g[k].detach() : at::zeros_like(params[k]);
  return g;
}

}  // namespace

EpisodeGradient episode_meta_gradient(MultiTaskModelImpl& model, const std::vector<at::Tensor>& params,
                                      const std::vector<bool>& adapted, const TaskSpec& task, const Episode& episode,
                                      const InnerLoop& inner, const EpisodeStream& stream) {
  const EpisodeLoss loss{model, task, episode.task, stream};
  const std::vector<at::Tensor> a = select(params, adapted);
  EpisodeGradient r;
  std::vector<at::Tensor> meta_values;  // Reptile's reference point
  if (inner.method == MetaMethod::kReptile)
    for (const auto& p : a) meta_values.push_back(p.detach().clone());
  std::vector<std::vector<at::Tensor>> snapshots;
  r.support_loss = inner_steps(loss, a, episode.support, inner,
                               inner.method == MetaMethod::kMaml ? &snapshots : nullptr);
  at::Tensor out;
  if (inner.method == MetaMethod::kReptile) {  // no query gradient: the step towards the adapted weights
    torch::NoGradGuard no_grad;
    r.query_loss = loss(episode.query, inner.steps, &out).item<double>();
    r.query_accuracy = accuracy(task, out, episode.query);
    r.grads.assign(params.size(), at::Tensor());
    for (size_t k = 0, j = 0; k < params.size(); ++k)
      r.grads[k] = adapted[k] ? (meta_values[j++] - params[k].detach()).contiguous() : at::zeros_like(params[k]);
    return r;
  }
  std::vector<at::Tensor> gq;
  {
    torch::AutoGradMode grad_mode(true);
    at::Tensor lq = loss(episode.query, inner.steps, &out);
    r.query_loss = lq.item<double>();
    r.query_accuracy = accuracy(task, out.detach(), episode.query);
    gq = zeros_where_undefined(
        torch::autograd::grad({lq}, params, {}, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true),
        params);
  }
  if (inner.method == MetaMethod::kFomaml) {
    r.grads = std::move(gq);
    return r;
  }
  // MAML: backwards through the inner steps. v: the gradient w.r.t. the adapted parameters after step i;
  // gq's other entries collect what flows into the parameters that are not adapted.
  std::vector<at::Tensor> v;
  for (size_t k = 0; k < params.size(); ++k)
    if (adapted[k]) v.push_back(gq[k].clone());
  for (int64_t i = inner.steps - 1; i >= 0; --i) {
    {
      torch::NoGradGuard no_grad;
      for (size_t j = 0; j < a.size(); ++j) a[j].copy_(snapshots[static_cast<size_t>(i)][j]);
    }
    torch::AutoGradMode grad_mode(true);
    at::Tensor l = loss(episode.support, i);
    auto h = torch::autograd::grad({l}, a, {}, /*retain_graph=*/true, /*create_graph=*/true, /*allow_unused=*/true);
    at::Tensor dot;
    for (size_t j = 0; j < a.size(); ++j) {
      if (!h[j].defined()) continue;
      at::Tensor term = (h[j] * v[j]).sum();
      dot = dot.defined() ? dot + term : term;
    }
    if (!dot.defined() || !dot.requires_grad()) continue;
    auto hv = torch::autograd::grad({dot}, params, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                    /*allow_unused=*/true);
    torch::NoGradGuard no_grad;
    for (size_t k = 0, j = 0; k < params.size(); ++k) {
      if (adapted[k]) {
        if (hv[k].defined()) v[j].sub_(hv[k], inner.lr);
        ++j;
      } else if (hv[k].defined()) {
        gq[k].sub_(hv[k], inner.lr);
      }
    }
  }
  for (size_t k = 0, j = 0; k < params.size(); ++k)
    if (adapted[k]) gq[k] = v[j++];
  r.grads = std::move(gq);
  return r;
}

EpisodeGradient adapt_and_evaluate(MultiTaskModelImpl& model, const std::vector<at::Tensor>& params,
                                   const std::vector<bool>& adapted, const TaskSpec& task, const Episode& episode,
                                   const InnerLoop& inner, const EpisodeStream& stream) {
  const EpisodeLoss loss{model, task, episode.task, stream};
  EpisodeGradient r;
  r.support_loss = inner_steps(loss, select(params, adapted), episode.support, inner, nullptr);
  torch::NoGradGuard no_grad;
  at::Tensor out;
  r.query_loss = loss(episode.query, inner.steps, &out).item<double>();
  r.query_accuracy = accuracy(task, out, episode.query);
  return r;
}

}  // namespace mtl
