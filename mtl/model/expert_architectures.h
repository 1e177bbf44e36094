// Expert architectures: experts mixed per task by softmax gates (model.architecture mmoe | cgc | ple).
//   mmoe (Ma et al. 2018, "Modeling Task Relationships in Multi-task Learning with Multi-gate
//        Mixture-of-Experts"): `experts` shared experts; task t reads sum_e g_t(x)_e * expert_e(x).
//   cgc  (Tang et al. 2020, "Progressive Layered Extraction", the one-level form): `shared_experts` shared
//        and `task_experts` experts per task; task t's gate mixes the shared experts and its own.
//   ple  (same paper): `levels` levels of cgc; below the last, a shared gate mixes every expert of the level
//        into the next level's shared input, and task t's gate into its own experts' input.
// Level-1 experts are model.backbone (each its own copy, e.g. a lenet); experts of later ple levels are
// Linear(D, D) + ReLU on the level below's D features. Gates are Linear(gate input, experts mixed), softmax
// at `temperature`; `gate_input: input` reads the flattened raw input (vision and tabular data), `experts` the
// mean of the experts it mixes (any input, text included); level > 1 gates read their own branch's input.
//
// Shared and task parameters, as the papers define them: every expert a gate of several tasks mixes is
// shared; task t owns its gate of the last level, its experts of the last level and (ple) its gate of the
// level below, whose output only its own experts read. Lower levels' task experts feed the shared gate, so
// every task's loss reaches them: gradient methods combine them as shared parameters. The shared
// representation (weighting.space: representation) is the shared experts' outputs [B, shared x D] of a
// one-level architecture; a ple with levels >= 2 has none.
//
// Parameter names: levels.<l>.shared.<i>.*, levels.<l>.tasks.<task>.<i>.*, levels.<l>.gates.<task>.*,
// levels.<l>.shared_gate.* (l from 0).
//
//   YAML: model: {backbone: lenet, architecture: {type: mmoe, experts: 3, gate_input: input}}
//         model: {backbone: lenet, architecture: {type: ple, levels: 2, shared_experts: 2, task_experts: 1}}
#pragma once

#include "mtl/model/architecture.h"

namespace mtl {

struct GatedExpertsOptions {
  std::string type = "mmoe";          // mmoe | cgc | ple (the name reported)
  int64_t levels = 1;
  int64_t shared_experts = 3;
  int64_t task_experts = 0;           // per task and level
  std::string gate_input = "input";   // input | experts
  double temperature = 1.0;
  std::string expert;                 // the experts' backbone type, for describe()
};

/// Registry factories: read the options, check them (one-line errors naming the key) and build.
ArchitecturePtr make_mmoe(const ConfigNode& options, const ArchitectureContext& ctx);
ArchitecturePtr make_cgc(const ConfigNode& options, const ArchitectureContext& ctx);
ArchitecturePtr make_ple(const ConfigNode& options, const ArchitectureContext& ctx);

/// The architecture itself, for C++ users (experts: one backbone per level-1 expert, shared first, then each
/// task's; input_name: the raw input `gate_input: input` reads, with `input_features` values per example).
ArchitecturePtr make_gated_experts(const GatedExpertsOptions& options, std::vector<Backbone> experts,
                                   std::vector<std::string> tasks, const std::string& input_name,
                                   int64_t input_features);

}  // namespace mtl
