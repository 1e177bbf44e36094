// Small helpers shared by the built-in weighting methods' implementations: checking an options struct in a
// method's constructor, and reading checkpoint state back. Not needed to use a method, only to write one.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/serialize/input-archive.h>

#include <string>
#include <vector>

namespace mtl {

/// Throws mtl::Error located at "<options>.<key>" (e.g. "PcGradOptions.order", as validate_options in
/// mtl/config/option_check.h does for the other components) unless `cond`; `expected`
/// says what was expected and what was given.
void check_option(bool cond, const std::string& options, const std::string& key, const std::string& expected);

/// "expected a value in [lo, hi], got v" and the like, for check_option messages.
std::string got(const std::string& expected, double value);
std::string got(const std::string& expected, const std::string& value);

/// Checkpoint state: `key` as a float64 vector of `size` values (error naming the method and key otherwise).
std::vector<double> read_state_vector(torch::serialize::InputArchive& archive, const std::string& key, int64_t size,
                                      const std::string& method);
/// Checkpoint state: `key` copied into the learned parameter `param` (same size), without recording gradients.
void load_learned(torch::serialize::InputArchive& archive, const std::string& key, at::Tensor& param,
                  const std::string& method);

}  // namespace mtl
