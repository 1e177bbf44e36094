// Layer-wise architectures over a backbone that runs in stages (BackboneImpl::num_stages: lenet, mlp, resnet,
// transformer):
//   cross_stitch (Misra et al. 2016, "Cross-stitch Networks for Multi-task Learning"): one copy of the backbone
//     per task; after every stage but the last, task t continues from sum_u alpha[t, u] x_u, a learned T x T
//     mixing per stage initialised identity-heavy as in the paper (`init_same` 0.9 on the diagonal, the rest of
//     each row 0.1 split over the other tasks).
//   mtan (Liu et al. 2019, "End-to-End Multi-Task Learning with Attention"): one shared backbone; task t
//     reads, at every stage i, the attended features h_i = sigmoid(g_ti([u_i, f_i(h_{i-1})])) * u_i, where u_i
//     is the shared stage's output, g_ti is task t's attention module (Linear, ReLU, Linear along the channel
//     axis: C for feature maps, the last axis otherwise; stage 0 reads u_0 alone) and f_i is a shared attention
//     encoder that maps the task's stage i - 1 features to stage i's shape: stage i of a second copy of the
//     backbone (the paper's shared f blocks; the backbone's own normalisation statistics see only its own
//     stream). The last stage's h is the task's features.
//   branch: the tasks share the first `at` stages (the trunk), then each group of tasks (`groups`; default: every
//     task alone) gets its own copy of the remaining stages: tree-structured sharing. `at` = the stage count is
//     hard sharing; 0 is one network per group.
//   ltb (Guo et al. 2020, "Learning to Branch for Multi-Task Learning"): one copy of the backbone per task gives
//     every stage T nodes; node t of stage i >= 1 reads one parent among stage i - 1's nodes, chosen by learned
//     logits: a Gumbel-softmax mixture (noise drawn once per step, `temperature` 1, `hard` false) while
//     training before `fix_epoch` (3, 0-based), then the argmax parent, fixed for the rest of the run (saved
//     with it). Task t reads node t of the last stage. Once fixed, the nodes no task's path uses do not run:
//     the network is the learned tree.
// Shared and task parameters: in cross_stitch, every copy's stages before the last feed the mixing, so every
// task's loss reaches them (shared, with the mixing weights); copy t's last stage is task t's. In ltb, likewise (before
// the fix every node of a stage but the last feeds every task; after it, a node off the other tasks' paths just
// gets no gradient from them): task t owns copy t's last stage and that node's logits. In branch, the
// trunk and the branches of groups of two or more tasks are shared; a one-task group's branch is that task's.
// In mtan, the backbone and the encoders are shared, task t's attention modules are its own.
// Shared representation: branch with one-task groups and at >= 1 (the trunk's output); cross_stitch has none.
// Feature maps (TrunkOutput::maps, for dense heads): task t's 4-D stage outputs, input side first: its copy's
// (cross_stitch, before mixing), its attended h_i (mtan), the trunk's then its branch's (branch).
// Parameter names: copies.<task>.*, stitch.alpha<i> (cross_stitch); copies.<task>.*, branching.alpha<i>_<t>
// (ltb: node t of stage i; buffers branching.parents, branching.fixed); backbone.*, encoder.* (stage 0 unused, so
// absent), attention.<task>.<i>.{0,2}.* (mtan); trunk.*, branches.g<k>.* (branch).
//
//   YAML: model: {backbone: lenet, architecture: {type: cross_stitch, init_same: 0.9}}
//         model: {backbone: lenet, architecture: mtan}
//         model: {backbone: lenet, architecture: {type: ltb, fix_epoch: 3, temperature: 1.0}}
//         model: {backbone: lenet, architecture: {type: branch, at: 2, groups: [[a, b], [c]]}}
#pragma once

#include "mtl/model/architecture.h"

namespace mtl {

/// Registry factories: read the options, check them (one-line errors naming the key) and build.
ArchitecturePtr make_cross_stitch(const ConfigNode& options, const ArchitectureContext& ctx);
ArchitecturePtr make_branch(const ConfigNode& options, const ArchitectureContext& ctx);
ArchitecturePtr make_mtan(const ConfigNode& options, const ArchitectureContext& ctx);
ArchitecturePtr make_ltb(const ConfigNode& options, const ArchitectureContext& ctx);

/// ltb's options (see above).
struct LtbOptions {
  int64_t fix_epoch = 3;     // the 0-based epoch from whose first training step on the tree is fixed
  double temperature = 1.0;  // of the Gumbel-softmax
  bool hard = false;         // straight-through one-hot choices in the search
};

/// For C++ users: `copies` one backbone per task (same type and shape), `init_same` the mixing's diagonal.
ArchitecturePtr make_cross_stitch_architecture(std::vector<Backbone> copies, std::vector<std::string> tasks,
                                               double init_same = 0.9);
/// `copies` one backbone per task (same type, at least 2 stages).
ArchitecturePtr make_ltb_architecture(std::vector<Backbone> copies, std::vector<std::string> tasks,
                                      LtbOptions options = {});
/// `backbone` and `encoder` are two backbones of one type; stage widths are read by a forward pass of
/// example inputs for `schema`.
ArchitecturePtr make_mtan_architecture(Backbone backbone, Backbone encoder, const DatasetSchema& schema,
                                       std::vector<std::string> tasks);
/// `trunk` and `branches` are full backbones of one type; the trunk keeps stages [0, at), each branch
/// [at, stages); groups[g] lists the task indices that branch g serves (every task in exactly one group).
ArchitecturePtr make_branch_architecture(Backbone trunk, std::vector<Backbone> branches, int64_t at,
                                         std::vector<std::vector<size_t>> groups, std::vector<std::string> tasks);

}  // namespace mtl
