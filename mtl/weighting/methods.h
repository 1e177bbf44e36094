// Factories of the built-in weighting methods, one source file each (registered in builtin.cpp).
#pragma once

#include <memory>

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

/// GradDrop's combination for a given uniform draw U [P] (exposed for tests).
at::Tensor graddrop_combine(const at::Tensor& G, const at::Tensor& U, double leak);

}  // namespace mtl
