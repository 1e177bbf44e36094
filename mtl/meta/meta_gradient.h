// One episode's meta-gradient (`meta.method`), on a model whose parameters the call may change (a thread's own
// copy: the trainer copies the meta-parameters into it first). The inner loop adapts the parameters marked in
// `adapted` (the episode task's head, a name pattern's, or all) by `inner_steps` SGD steps of `inner_lr` on
// the support set's loss; then:
//   maml     the exact gradient of the query loss after adaptation w.r.t. the meta-parameters, through the inner
//            steps (Finn et al. 2017). Computed backwards through the steps with Hessian-vector products: with
//            v = dL_q/da_k, for i = k-1..0 at a_i: v -= lr H_aa v, and the parameters that are not adapted
//            collect -lr H_pa v; that is what autograd through an unrolled create_graph=True loop computes.
//   fomaml   the query loss's gradient at the adapted parameters (first-order MAML).
//   reptile  meta-parameters minus adapted parameters (Nichol et al. 2018: an outer SGD step of rate e is
//            Reptile's interpolation towards the adapted weights); the query set is only evaluated.
// Dropout masks of inner step i are drawn from (seed, step, episode, i), so MAML's backward pass sees the
// same function as its forward pass.
//
//   std::vector<at::Tensor> g = mtl::episode_meta_gradient(model, params, adapted, task, episode, options, ctx).grads;
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "mtl/core/task.h"
#include "mtl/meta/episodes.h"
#include "mtl/model/multi_task_model.h"

namespace mtl {

enum class MetaMethod { kMaml, kFomaml, kReptile };

struct InnerLoop {
  MetaMethod method = MetaMethod::kMaml;
  int64_t steps = 5;
  double lr = 0.01;
};

/// Where an episode's random draws come from: (seed, step, episode) plus the inner step.
struct EpisodeStream {
  uint64_t seed = 0;
  int64_t step = 0;
  int64_t episode = 0;
};

struct EpisodeGradient {
  std::vector<at::Tensor> grads;     // per parameter of `params` (zeros where the episode has no gradient)
  double support_loss = 0.0;         // before adaptation
  double query_loss = 0.0;           // after adaptation
  double query_accuracy = -1.0;      // after adaptation; class labels only (else -1)
};

/// `params`: the model's trainable parameters (the meta-parameters), `adapted[k]` whether params[k] is adapted
/// in the inner loop. Changes the adapted parameters (the caller copies the meta-parameters in before each episode).
EpisodeGradient episode_meta_gradient(MultiTaskModelImpl& model, const std::vector<at::Tensor>& params,
                                      const std::vector<bool>& adapted, const TaskSpec& task, const Episode& episode,
                                      const InnerLoop& inner, const EpisodeStream& stream);

/// The inner loop alone (test-time adaptation: `mtl adapt`, the meta-trainer's evaluation): `steps` SGD steps
/// of `lr` on the support set for the adapted parameters; then the query loss and accuracy, without gradients.
EpisodeGradient adapt_and_evaluate(MultiTaskModelImpl& model, const std::vector<at::Tensor>& params,
                                   const std::vector<bool>& adapted, const TaskSpec& task, const Episode& episode,
                                   const InnerLoop& inner, const EpisodeStream& stream);

}  // namespace mtl
