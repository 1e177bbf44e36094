#include "mtl/metrics/metric.h"

#include <ATen/ATen.h>

#include "mtl/core/error.h"

namespace mtl {

std::vector<double> Metric::state() const {
  throw Error("metric " + name(), "cannot be combined across processes (implement Metric::state and merge)");
}

void Metric::merge(const std::vector<double>&) {
  throw Error("metric " + name(), "cannot be combined across processes (implement Metric::state and merge)");
}

std::pair<at::Tensor, at::Tensor> same_shape_doubles(const char* metric, const at::Tensor& output,
                                                     const at::Tensor& target) {
  TORCH_CHECK(output.sizes() == target.sizes(), metric, ": expected outputs and targets of the same shape, got ",
              output.sizes(), " and ", target.sizes());
  return {output.detach().to(at::kCPU, at::kDouble), target.detach().to(at::kCPU, at::kDouble)};
}

void check_metric_part(const Metric& metric, const std::vector<double>& part, size_t expected) {
  if (part.size() != expected)
    throw Error("metric " + metric.name(), "a part's state has " + std::to_string(part.size()) +
                                               " numbers, expected " + std::to_string(expected) +
                                               " (metrics with different options?)");
}

void merge_counts(const Metric& metric, const std::vector<double>& part, std::initializer_list<int64_t*> counts) {
  check_metric_part(metric, part, counts.size());
  size_t i = 0;
  for (int64_t* c : counts) *c += static_cast<int64_t>(part[i++]);
}

}  // namespace mtl
