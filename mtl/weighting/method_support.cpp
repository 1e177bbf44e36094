#include "mtl/weighting/method_support.h"

#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>

#include <sstream>

#include "mtl/core/error.h"

namespace mtl {

void check_option(bool cond, const std::string& options, const std::string& key, const std::string& expected) {
  if (!cond) throw Error(options + "." + key, expected);
}

std::string got(const std::string& expected, double value) {
  std::ostringstream s;
  s << expected << ", got " << value;
  return s.str();
}

std::string got(const std::string& expected, const std::string& value) {
  return expected + ", got '" + value + "'";
}

std::vector<double> read_state_vector(torch::serialize::InputArchive& archive, const std::string& key, int64_t size,
                                      const std::string& method) {
  at::Tensor v;
  archive.read(key, v);
  TORCH_CHECK(v.dim() == 1 && v.numel() == size, "checkpoint ", method, " state '", key, "' has ", v.numel(),
              " values, the config needs ", size);
  v = v.to(at::kDouble).contiguous();
  return std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
}

void load_learned(torch::serialize::InputArchive& archive, const std::string& key, at::Tensor& param,
                  const std::string& method) {
  std::vector<double> v = read_state_vector(archive, key, param.numel(), method);
  at::NoGradGuard no_grad;
  param.copy_(at::tensor(v, at::kDouble).view(param.sizes()));
}

}  // namespace mtl
