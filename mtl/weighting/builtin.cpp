// The explicit list of built-in weighting strategies: one line per method, each its options' from_config
// followed by its constructor.
#include "mtl/config/config_node.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
// A method whose constructor takes only its options.
template <typename X>
WeightingFactory from_options() {
  return [](const ConfigNode& n, const WeightingContext&) -> std::unique_ptr<Weighting> {
    return std::make_unique<X>(X::Options::from_config(n));
  };
}

// A method whose constructor takes the task count and its options.
template <typename X>
WeightingFactory per_task() {
  return [](const ConfigNode& n, const WeightingContext& ctx) -> std::unique_ptr<Weighting> {
    return std::make_unique<X>(static_cast<int64_t>(ctx.task_names.size()), X::Options::from_config(n));
  };
}

// `ew`/`fixed`: the weights are the tasks' own `weight` entries.
std::unique_ptr<Weighting> make_fixed(const ConfigNode& n, const WeightingContext& ctx) {
  return std::make_unique<FixedWeighting>(static_cast<int64_t>(ctx.task_weights.size()),
                                          FixedWeightingOptions::from_config(n).weights(ctx.task_weights));
}

void register_builtin_weightings(Registry<WeightingFactory>& r) {
  r.add("ew", make_fixed);
  r.add("fixed", make_fixed);
  r.add("gls", from_options<Gls>());
  r.add("uw", per_task<UncertaintyWeighting>());
  r.add("dwa", per_task<Dwa>());
  r.add("rlw", per_task<Rlw>());
  r.add("famo", per_task<Famo>());
  r.add("stch", per_task<Stch>());
  r.add("gradnorm", per_task<GradNorm>());
  r.add("mgda", from_options<Mgda>());
  r.add("mgda_ub", from_options<MgdaUb>());
  r.add("pcgrad", from_options<PcGrad>());
  r.add("cagrad", from_options<CaGrad>());
  r.add("imtl", per_task<Imtl>());
  r.add("nash_mtl", from_options<NashMtl>());
  r.add("upgrad", from_options<UpGrad>());
  r.add("dualproj", from_options<DualProj>());
  r.add("gradvac", per_task<GradVac>());
  r.add("graddrop", from_options<GradDrop>());
  r.add("aligned_mtl", from_options<AlignedMtl>());
  r.add("config", from_options<ConFig>());
  r.add("db_mtl", per_task<DbMtl>());
}
// `weighting.space`: parameters (default) or representation, for gradient-based methods; `mgda_ub` is mgda with
// space: representation.
void set_gradient_space(const ConfigNode& w, const std::string& method, Weighting& weighting) {
  const std::vector<std::string> spaces{"parameters", "representation"};
  auto* gradient = dynamic_cast<GradientWeighting*>(&weighting);
  if (!gradient) {
    if (w.has("space"))
      w.check(w.choice("space", "parameters", spaces) == "parameters", "space",
              "method '" + method + "' is loss-based and takes no task gradients; space applies to gradient-based "
              "methods (mgda, pcgrad, cagrad, ...)");
    return;
  }
  const bool alias = method == "mgda_ub";
  const std::string space = w.choice("space", alias ? "representation" : "parameters", spaces);
  w.check(!alias || space == "representation", "space",
          "mgda_ub is mgda with space: representation (use method: mgda for parameter space)");
  if (space == "parameters") {
    gradient->set_space(GradientSpace::kParameters);
    return;
  }
  const std::string why = gradient->representation_space_refusal();
  w.check(why.empty(), "space", "representation space is not defined for method '" + method + "': " + why);
  gradient->set_space(GradientSpace::kRepresentation);
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

std::unique_ptr<Weighting> make_weighting(const ConfigNode& node, const WeightingContext& ctx) {
  const std::string method = node.get<std::string>("method", "ew");
  std::unique_ptr<Weighting> out = weighting_registry().get(method, node.where("method"))(node, ctx);
  set_gradient_space(node, method, *out);
  return out;
}

}  // namespace mtl
