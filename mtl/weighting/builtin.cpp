// The explicit list of built-in weighting strategies: one line per method.
#include "mtl/weighting/fixed.h"
#include "mtl/weighting/methods.h"
#include "mtl/weighting/weighting.h"

namespace mtl {

namespace {
void register_builtin_weightings(Registry<WeightingFactory>& r) {
  r.add("ew", make_fixed_weighting);
  r.add("fixed", make_fixed_weighting);
  r.add("gls", make_gls_weighting);
  r.add("uw", make_uncertainty_weighting);
  r.add("dwa", make_dwa_weighting);
  r.add("rlw", make_rlw_weighting);
  r.add("famo", make_famo_weighting);
  r.add("stch", make_stch_weighting);
  r.add("gradnorm", make_gradnorm_weighting);
  r.add("mgda", make_mgda_weighting);
  r.add("mgda_ub", make_mgda_ub_weighting);
  r.add("pcgrad", make_pcgrad_weighting);
  r.add("cagrad", make_cagrad_weighting);
  r.add("imtl", make_imtl_weighting);
  r.add("nash_mtl", make_nash_mtl_weighting);
  r.add("upgrad", make_upgrad_weighting);
  r.add("dualproj", make_dualproj_weighting);
  r.add("gradvac", make_gradvac_weighting);
  r.add("graddrop", make_graddrop_weighting);
  r.add("aligned_mtl", make_aligned_mtl_weighting);
  r.add("config", make_config_weighting);
  r.add("db_mtl", make_db_mtl_weighting);
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
