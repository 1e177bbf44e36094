// Factories of the built-in weighting methods, one source file each (registered in builtin.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/serialize/input-archive.h>

#include "mtl/weighting/weighting.h"

namespace mtl {

std::unique_ptr<Weighting> make_gls_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_uncertainty_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_dwa_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_rlw_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_mgda_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_pcgrad_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_cagrad_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_imtl_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_nash_mtl_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_upgrad_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_dualproj_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_gradvac_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_graddrop_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_aligned_mtl_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_config_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_db_mtl_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_mgda_ub_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_famo_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_stch_weighting(const ConfigNode& options, const WeightingContext& ctx);
std::unique_ptr<Weighting> make_gradnorm_weighting(const ConfigNode& options, const WeightingContext& ctx);

/// Checkpoint state: `key` as a float64 vector of `size` values (error naming the method and key otherwise).
std::vector<double> read_state_vector(torch::serialize::InputArchive& archive, const std::string& key, int64_t size,
                                      const std::string& method);
/// Checkpoint state: `key` copied into the learned parameter `param` (same size), without recording gradients.
void load_learned(torch::serialize::InputArchive& archive, const std::string& key, at::Tensor& param,
                  const std::string& method);

/// GradDrop's combination for a given uniform draw U [P] (exposed for tests).
at::Tensor graddrop_combine(const at::Tensor& G, const at::Tensor& U, double leak);

}  // namespace mtl
