#include "mtl/engine/nonfinite.h"

#include <cmath>
#include <unordered_set>

#include "mtl/engine/engine.h"

namespace mtl {

namespace {

// "nan", "inf" or "nan and inf" for a tensor known to have a non-finite value.
std::string what_is_nonfinite(const at::Tensor& t) {
  const bool nan = at::isnan(t).any().item<bool>();
  const bool inf = at::isinf(t).any().item<bool>();
  return nan && inf ? "nan and inf" : nan ? "nan" : "inf";
}

bool all_finite(const at::Tensor& t) { return at::isfinite(t).all().item<bool>(); }

}  // namespace

std::string find_nonfinite(const StepResult& r, const std::vector<TaskSpec>& tasks,
                           const torch::OrderedDict<std::string, at::Tensor>& named,
                           const torch::optim::Optimizer& optimizer) {
  for (size_t t = 0; t < r.losses.size() && t < tasks.size(); ++t)
    if (r.present[t] && !std::isfinite(r.losses[t]))
      return "task '" + tasks[t].name + "': loss is " + (std::isnan(r.losses[t]) ? "nan" : "inf");
  std::unordered_set<const void*> seen;
  for (const auto& kv : named) {
    seen.insert(kv.value().unsafeGetTensorImpl());
    const at::Tensor& g = kv.value().grad();
    if (g.defined() && !all_finite(g)) return "gradient of '" + kv.key() + "' has " + what_is_nonfinite(g);
  }
  for (const auto& group : optimizer.param_groups())
    for (const auto& p : group.params()) {
      if (seen.count(p.unsafeGetTensorImpl())) continue;
      const at::Tensor& g = p.grad();
      if (g.defined() && !all_finite(g))
        return "gradient of a weighting method's parameter has " + what_is_nonfinite(g);
    }
  return "";
}

void StateSnapshot::capture(const Stateful& state) {
  torch::serialize::OutputArchive archive;
  state.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  bytes_ = out.str();
}

void StateSnapshot::restore(Stateful& state) const {
  std::istringstream in(bytes_);
  torch::serialize::InputArchive archive;
  archive.load_from(in);
  state.load(archive);
}

}  // namespace mtl
