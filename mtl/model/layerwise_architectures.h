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
// Shared and task parameters: in cross_stitch, every copy's stages before the last feed the mixing, so every
// task's loss reaches them (shared, with the mixing weights); copy t's last stage is task t's. In branch, the
// trunk and the branches of groups of two or more tasks are shared; a one-task group's branch is that task's.
// In mtan, the backbone and the encoders are shared, task t's attention modules are its own.
// Shared representation: branch with one-task groups and at >= 1 (the trunk's output); cross_stitch has none.
// Feature maps (TrunkOutput::maps, for dense heads): task t's 4-D stage outputs, input side first: its copy's
// (cross_stitch, before mixing), its attended h_i (mtan), the trunk's then its branch's (branch).
// Parameter names: copies.<task>.*, stitch.alpha<i> (cross_stitch); backbone.*, encoder.* (stage 0 unused, so
// absent), attention.<task>.<i>.{0,2}.* (mtan); trunk.*, branches.g<k>.* (branch).
//
//   YAML: model: {backbone: lenet, architecture: {type: cross_stitch, init_same: 0.9}}
//         model: {backbone: lenet, architecture: mtan}
//         model: {backbone: lenet, architecture: {type: branch, at: 2, groups: [[a, b], [c]]}}
#pragma once

#include "mtl/model/architecture.h"

namespace mtl {

/// Registry factories: read the options, check them (one-line errors naming the key) and build.
ArchitecturePtr make_cross_stitch(const ConfigNode& options, const ArchitectureContext& ctx);
ArchitecturePtr make_branch(const ConfigNode& options, const ArchitectureContext& ctx);
ArchitecturePtr make_mtan(const ConfigNode& options, const ArchitectureContext& ctx);

/// For C++ users: `copies` one backbone per task (same type and shape), `init_same` the mixing's diagonal.
ArchitecturePtr make_cross_stitch_architecture(std::vector<Backbone> copies, std::vector<std::string> tasks,
                                               double init_same = 0.9);
/// `backbone` and `encoder` are two backbones of one type; stage widths are read by a forward pass of
/// example inputs for `schema`.
ArchitecturePtr make_mtan_architecture(Backbone backbone, Backbone encoder, const DatasetSchema& schema,
                                       std::vector<std::string> tasks);
/// `trunk` and `branches` are full backbones of one type; the trunk keeps stages [0, at), each branch
/// [at, stages); groups[g] lists the task indices that branch g serves (every task in exactly one group).
ArchitecturePtr make_branch_architecture(Backbone trunk, std::vector<Backbone> branches, int64_t at,
                                         std::vector<std::vector<size_t>> groups, std::vector<std::string> tasks);

}  // namespace mtl
