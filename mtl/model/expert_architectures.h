// Expert architectures: experts mixed per task by softmax gates (model.architecture mmoe | cgc | ple).
//   mmoe (Ma et al. 2018, "Modeling Task Relationships in Multi-task Learning with Multi-gate
//        Mixture-of-Experts"): `experts` shared experts; task t reads sum_e g_t(x)_e * expert_e(x).
//   cgc  (Tang et al. 2020, "Progressive Layered Extraction", the one-level form): `shared_experts` shared
//        and `task_experts` experts per task; task t's gate mixes the shared experts and its own.
//   ple  (same paper): `levels` levels of cgc; below the last, a shared gate mixes every expert of the level
//        into the next level's shared input, and task t's gate into its own experts' input.
//   dselect_k (Hazimeh et al. 2021, "DSelect-k: Differentiable Selection in the Mixture of Experts with
//        Applications to Multi-Task Learning"): `experts` shared experts as in mmoe, but each task's gate is a
//        DSelect-k gate (below) that learns to choose `k` of them; its entropy regulariser joins the task's
//        training loss.
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
// levels.<l>.shared_gate.* (l from 0); a DSelect-k gate's are levels.0.gates.<task>.{z,w}.*.
//
//   YAML: model: {backbone: lenet, architecture: {type: mmoe, experts: 3, gate_input: input}}
//         model: {backbone: lenet, architecture: {type: ple, levels: 2, shared_experts: 2, task_experts: 1}}
//         model: {backbone: lenet, architecture: {type: dselect_k, experts: 4, k: 2, gamma: 1, entropy: 0.001}}
#pragma once

#include <torch/nn/modules/linear.h>

#include "mtl/model/architecture.h"

namespace mtl {

/// DSelect-k gate: k single-expert selectors, each a product over the m = ceil(log2 E) bits of an expert's
/// index of the smooth-step s(z_j) (bit 1) or 1 - s(z_j) (bit 0), where s is 0 below -gamma/2, 1 above
/// gamma/2 and a cubic between; the selectors are mixed by softmax(w(x) / temperature). z = Linear(in, k x m)
/// and w = Linear(in, k) read the gate input. A selector's weights over the 2^m codes sum to 1; when E is not a
/// power of 2, code c >= E counts for expert c - E, so rows of the gate's weights sum to 1 in every case. Once
/// every z is outside (-gamma/2, gamma/2) each selector picks one expert, so at most k weights are non-zero.
/// The entropy regulariser (`entropy` x the selectors' mean entropy) pushes the selectors there. Initial
/// weights as in the paper's code: z ~ U(-gamma/100, gamma/100), w ~ U(-0.05, 0.05).
class DSelectGateImpl : public torch::nn::Module {
 public:
  DSelectGateImpl(int64_t in, int64_t experts, int64_t k, double gamma = 1.0, double entropy = 1e-3);
  /// Weights [B, E]; in training mode and when `regularizer` is given, sets it to the gate's regulariser.
  at::Tensor forward(const at::Tensor& x, double temperature = 1.0, at::Tensor* regularizer = nullptr);
  at::Tensor smooth_step(const at::Tensor& t) const;
  void reset(at::Generator& gen);
  /// The most non-zero weights per row once the selectors are saturated (min(k, E)).
  int64_t nonzero_bound() const;

  torch::nn::Linear z{nullptr}, w{nullptr};

 private:
  int64_t experts_, k_, bits_;
  double gamma_, entropy_;
  at::Tensor codes_;  // [E, m] bool: expert e's index in binary, most significant bit first
};
TORCH_MODULE(DSelectGate);

struct GatedExpertsOptions {
  std::string type = "mmoe";          // mmoe | cgc | ple (the name reported)
  int64_t levels = 1;
  int64_t shared_experts = 3;
  int64_t task_experts = 0;           // per task and level
  std::string gate_input = "input";   // input | experts
  double temperature = 1.0;
  std::string expert;                 // the experts' backbone type, for describe()
  std::string gate = "softmax";       // softmax | dselect
  int64_t k = 2;                      // dselect: experts each gate chooses
  double gamma = 1.0;                 // dselect: width of the smooth-step's cubic part
  double entropy = 1e-3;              // dselect: weight of the selectors' entropy regulariser
};

/// Registry factories: read the options, check them (one-line errors naming the key) and build.
ArchitecturePtr make_mmoe(const ConfigNode& options, const ArchitectureContext& ctx);
ArchitecturePtr make_cgc(const ConfigNode& options, const ArchitectureContext& ctx);
ArchitecturePtr make_ple(const ConfigNode& options, const ArchitectureContext& ctx);
ArchitecturePtr make_dselect_k(const ConfigNode& options, const ArchitectureContext& ctx);

/// The architecture itself, for C++ users (experts: one backbone per level-1 expert, shared first, then each
/// task's; input_name: the raw input `gate_input: input` reads, with `input_features` values per example).
ArchitecturePtr make_gated_experts(const GatedExpertsOptions& options, std::vector<Backbone> experts,
                                   std::vector<std::string> tasks, const std::string& input_name,
                                   int64_t input_features);

}  // namespace mtl
