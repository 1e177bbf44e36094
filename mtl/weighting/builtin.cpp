// The explicit list of built-in weighting strategies: one line per method.
#include "mtl/weighting/fixed.h"
#include "mtl/weighting/weighting.h"

namespace mtl {

namespace {
void register_builtin_weightings(Registry<WeightingFactory>& r) {
  r.add("ew", make_fixed_weighting);
  r.add("fixed", make_fixed_weighting);
}
}  // namespace

Registry<WeightingFactory>& weighting_registry() {
  static Registry<WeightingFactory> r = [] {
    Registry<WeightingFactory> reg("weighting method");
    register_builtin_weightings(reg);
    return reg;
  }();
  return r;
}

}  // namespace mtl
