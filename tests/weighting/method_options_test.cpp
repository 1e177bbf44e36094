// The built-in weighting methods used from C++ without YAML: every method built from its options struct gives
// the same weights, combined gradients, learned-parameter gradients and checkpoint-free state evolution as the
// registry built from the equivalent YAML, over several steps and epochs of a fixed 3-task problem; the
// options are really passed on (non-default options differ from the defaults); bad options throw mtl::Error
// naming the options struct and the key.
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <limits>
#include <set>

#include "mtl/weighting/methods.h"
#include "test_util.h"
#include "weighting/weighting_test_util.h"

namespace {

using Factory = std::function<std::unique_ptr<mtl::Weighting>()>;

at::Tensor conflict() {
  return torch::tensor({1.0, 0.5, -0.3, 2.0, 0.0, -0.8, 0.3, 1.2, -1.5, 0.4, 0.2, -1.0, 0.7, 0.9, -0.6},
                       torch::kDouble)
      .view({3, 5});
}

void append(std::vector<double>& out, const std::vector<double>& v) { out.insert(out.end(), v.begin(), v.end()); }

void append(std::vector<double>& out, const at::Tensor& t) {
  at::Tensor c = t.detach().to(at::kDouble).contiguous();
  out.insert(out.end(), c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Everything observable from four steps (one per epoch) of `w` on a fixed 3-task problem, as one vector.
std::vector<double> trace(mtl::Weighting& w) {
  std::vector<double> out;
  // Two modules of the trunk: GradNorm's `layer: last` takes the last three columns.
  w.set_shared_parameters({{"backbone.a.weight", 2}, {"backbone.b.weight", 2}, {"backbone.b.bias", 1}});
  for (int64_t step = 0; step < 4; ++step) {
    mtl::StepContext ctx{step, step};
    const double s = 1.0 + 0.3 * static_cast<double>(step);
    std::vector<double> losses{0.9 * s, 1.4 / s, 0.6 + 0.1 * static_cast<double>(step)};
    at::Tensor G = conflict() * torch::tensor({1.0, s, 1.0 / s}, torch::kDouble).unsqueeze(1);
    append(out, w.loss_weights(w.weights_ignore_step_losses() ? std::vector<double>{} : losses, ctx));
    if (w.needs() != mtl::GradientKind::kWeightedLoss) append(out, w.combine(G, losses, ctx));
    if (w.needs_losses_after_step()) w.after_step({losses[0] * 0.8, losses[1] * 0.9, losses[2] * 0.95}, ctx);
    append(out, w.last_weights());
    for (const at::Tensor& p : w.parameters()) {
      append(out, p);
      if (p.grad().defined()) append(out, p.grad());
    }
    w.on_epoch_end(losses);
  }
  return out;
}

struct Entry {
  std::string yaml;          // the registry's input
  Factory cpp;               // the same method from C++ options
  std::string default_yaml;  // the method with default options ("" when it has none to change)
};

std::vector<Entry> entries() {
  using namespace mtl;
  auto own = [](auto* p) { return std::unique_ptr<Weighting>(p); };
  return {
      {"{method: ew}", [=] { return own(new FixedWeighting(3)); }, ""},
      {"{method: fixed}", [=] { return own(new FixedWeighting(3, FixedWeightingOptions().weights({1, 1, 1}))); }, ""},
      {"{method: gls}", [=] { return own(new Gls()); }, ""},
      {"{method: uw, init: 0.3}", [=] { return own(new UncertaintyWeighting(3, UncertaintyWeightingOptions().init(0.3))); },
       "{method: uw}"},
      {"{method: dwa, temperature: 0.5}", [=] { return own(new Dwa(3, DwaOptions().temperature(0.5))); },
       "{method: dwa}"},
      {"{method: rlw, seed: 7}", [=] { return own(new Rlw(3, RlwOptions().seed(7))); }, "{method: rlw}"},
      {"{method: famo, lr: 0.1, gamma: 0.02}", [=] { return own(new Famo(3, FamoOptions().lr(0.1).gamma(0.02))); },
       "{method: famo}"},
      {"{method: stch, mu: 0.5, warmup_epochs: 1}",
       [=] { return own(new Stch(3, StchOptions().mu(0.5).warmup_epochs(1))); }, "{method: stch}"},
      {"{method: gradnorm, alpha: 0.5, layer: all}",
       [=] { return own(new GradNorm(3, GradNormOptions().alpha(0.5).layer("all"))); }, "{method: gradnorm}"},
      {"{method: mgda, normalization: l2, max_iter: 50, tol: 1e-4}",
       [=] { return own(new Mgda(MgdaOptions().normalization("l2").max_iter(50).tol(1e-4))); }, "{method: mgda}"},
      {"{method: mgda_ub, normalization: loss+}", [=] { return own(new MgdaUb(MgdaOptions().normalization("loss+"))); },
       "{method: mgda_ub}"},
      {"{method: pcgrad, order: random, seed: 3}",
       [=] { return own(new PcGrad(PcGradOptions().order("random").seed(3))); }, "{method: pcgrad, order: fixed}"},
      {"{method: cagrad, c: 0.2}", [=] { return own(new CaGrad(CaGradOptions().c(0.2))); }, "{method: cagrad}"},
      {"{method: imtl, part: gradient}", [=] { return own(new Imtl(3, ImtlOptions().part("gradient"))); },
       "{method: imtl}"},
      {"{method: imtl, part: loss}", [=] { return own(new Imtl(3, ImtlOptions().part("loss"))); }, "{method: imtl}"},
      {"{method: nash_mtl}", [=] { return own(new NashMtl()); }, ""},
      {"{method: upgrad, reg_eps: 0.01}", [=] { return own(new UpGrad(UpGradOptions().reg_eps(0.01))); },
       "{method: upgrad}"},
      {"{method: dualproj, reg_eps: 0.5}", [=] { return own(new DualProj(DualProjOptions().reg_eps(0.5))); },
       "{method: dualproj}"},
      {"{method: gradvac, beta: 0.5, order: fixed, seed: 2}",
       [=] { return own(new GradVac(3, GradVacOptions().beta(0.5).order("fixed").seed(2))); }, "{method: gradvac}"},
      {"{method: graddrop, leak: 0.2, seed: 5}", [=] { return own(new GradDrop(GradDropOptions().leak(0.2).seed(5))); },
       "{method: graddrop}"},
      {"{method: aligned_mtl}", [=] { return own(new AlignedMtl()); }, ""},
      {"{method: config}", [=] { return own(new ConFig()); }, ""},
      {"{method: db_mtl, beta: 0.5, beta_sigma: 1.0}",
       [=] { return own(new DbMtl(3, DbMtlOptions().beta(0.5).beta_sigma(1.0))); }, "{method: db_mtl}"},
  };
}

}  // namespace

TEST(WeightingOptions, EveryMethodFromCppOptionsMatchesItsYaml) {
  std::set<std::string> methods;
  for (const Entry& e : entries()) {
    auto from_cpp = e.cpp();
    auto from_yaml = mtl_test::make_weighting(e.yaml, 3);
    EXPECT_EQ(from_cpp->needs(), from_yaml->needs()) << e.yaml;
    std::vector<double> a = trace(*from_cpp), b = trace(*from_yaml);
    ASSERT_GT(a.size(), 12u) << e.yaml;
    EXPECT_EQ(a, b) << e.yaml;  // same code on the same numbers: bitwise equal
    if (!e.default_yaml.empty())
      EXPECT_NE(a, trace(*mtl_test::make_weighting(e.default_yaml, 3))) << e.yaml << ": options not passed on?";
    mtl::Config cfg = mtl::Config::from_string("w: " + e.yaml + "\n");
    methods.insert(cfg.root().child("w").get<std::string>("method", ""));
  }
  // Every registered method is covered.
  for (const std::string& name : mtl::weighting_registry().names()) EXPECT_TRUE(methods.count(name)) << name;
}

TEST(WeightingOptions, DefaultOptionsAreTheYamlDefaults) {
  using namespace mtl;
  auto same = [](std::unique_ptr<Weighting> cpp, const std::string& yaml) {
    EXPECT_EQ(trace(*cpp), trace(*mtl_test::make_weighting(yaml, 3))) << yaml;
  };
  same(std::make_unique<UncertaintyWeighting>(3), "{method: uw}");
  same(std::make_unique<Dwa>(3), "{method: dwa}");
  same(std::make_unique<Rlw>(3), "{method: rlw}");
  same(std::make_unique<Famo>(3), "{method: famo}");
  same(std::make_unique<Stch>(3), "{method: stch}");
  same(std::make_unique<GradNorm>(3), "{method: gradnorm}");
  same(std::make_unique<Mgda>(), "{method: mgda}");
  same(std::make_unique<MgdaUb>(), "{method: mgda_ub}");
  same(std::make_unique<PcGrad>(), "{method: pcgrad}");
  same(std::make_unique<CaGrad>(), "{method: cagrad}");
  same(std::make_unique<Imtl>(3), "{method: imtl}");
  same(std::make_unique<UpGrad>(), "{method: upgrad}");
  same(std::make_unique<DualProj>(), "{method: dualproj}");
  same(std::make_unique<GradVac>(3), "{method: gradvac}");
  same(std::make_unique<GradDrop>(), "{method: graddrop}");
  same(std::make_unique<DbMtl>(3), "{method: db_mtl}");
  // Getters return what the setters set.
  auto o = PcGradOptions().order("fixed").seed(9);
  EXPECT_EQ(o.order(), "fixed");
  EXPECT_EQ(o.seed(), 9);
  EXPECT_EQ(MgdaOptions().normalization(), "none");
  EXPECT_EQ(MgdaOptions().max_iter(), 250);
}

TEST(WeightingOptions, BadCppOptionsThrowNamingTheOptionAndKey) {
  using namespace mtl;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_MTL_ERROR(PcGrad(PcGradOptions().order("sorted")), "PcGradOptions.order", "'random' or 'fixed'", "sorted");
  EXPECT_MTL_ERROR(PcGrad(PcGradOptions().seed(-1)), "PcGradOptions.seed", ">= 0");
  EXPECT_MTL_ERROR(GradVac(2, GradVacOptions().beta(2)), "GradVacOptions.beta", "[0, 1]", "2");
  EXPECT_MTL_ERROR(GradVac(2, GradVacOptions().order("any")), "GradVacOptions.order");
  EXPECT_MTL_ERROR(GradDrop(GradDropOptions().leak(-0.5)), "GradDropOptions.leak", "[0, 1]");
  EXPECT_MTL_ERROR(GradDrop(GradDropOptions().seed(-2)), "GradDropOptions.seed");
  EXPECT_MTL_ERROR(CaGrad(CaGradOptions().c(1.0)), "CaGradOptions.c", "[0, 1)");
  EXPECT_MTL_ERROR(CaGrad(CaGradOptions().c(nan)), "CaGradOptions.c");
  EXPECT_MTL_ERROR(Mgda(MgdaOptions().normalization("l1")), "MgdaOptions.normalization", "none", "l1");
  EXPECT_MTL_ERROR(Mgda(MgdaOptions().max_iter(0)), "MgdaOptions.max_iter", "positive");
  EXPECT_MTL_ERROR(Mgda(MgdaOptions().tol(0)), "MgdaOptions.tol", "positive");
  EXPECT_MTL_ERROR(MgdaUb(MgdaOptions().normalization("l1")), "MgdaOptions.normalization");
  EXPECT_MTL_ERROR(UpGrad(UpGradOptions().reg_eps(-1)), "UpGradOptions.reg_eps", ">= 0");
  EXPECT_MTL_ERROR(DualProj(DualProjOptions().reg_eps(-1)), "DualProjOptions.reg_eps", ">= 0");
  EXPECT_MTL_ERROR(Imtl(2, ImtlOptions().part("all")), "ImtlOptions.part", "'both'");
  EXPECT_MTL_ERROR(DbMtl(2, DbMtlOptions().beta(1.5)), "DbMtlOptions.beta", "[0, 1]");
  EXPECT_MTL_ERROR(DbMtl(2, DbMtlOptions().beta_sigma(-1)), "DbMtlOptions.beta_sigma", ">= 0");
  EXPECT_MTL_ERROR(GradNorm(2, GradNormOptions().alpha(-1)), "GradNormOptions.alpha", ">= 0");
  EXPECT_MTL_ERROR(GradNorm(2, GradNormOptions().layer("first")), "GradNormOptions.layer", "'last' or 'all'");
  EXPECT_MTL_ERROR(Dwa(2, DwaOptions().temperature(0)), "DwaOptions.temperature", "positive");
  EXPECT_MTL_ERROR(Rlw(2, RlwOptions().seed(-3)), "RlwOptions.seed", ">= 0");
  EXPECT_MTL_ERROR(Famo(2, FamoOptions().lr(0)), "FamoOptions.lr", "positive");
  EXPECT_MTL_ERROR(Famo(2, FamoOptions().gamma(-1)), "FamoOptions.gamma", ">= 0");
  EXPECT_MTL_ERROR(Stch(2, StchOptions().mu(0)), "StchOptions.mu", "positive");
  EXPECT_MTL_ERROR(Stch(2, StchOptions().warmup_epochs(-1)), "StchOptions.warmup_epochs", ">= 0");
  EXPECT_MTL_ERROR(UncertaintyWeighting(2, UncertaintyWeightingOptions().init(50)), "UncertaintyWeightingOptions.init",
                   "[-20, 20]");
  EXPECT_MTL_ERROR(UncertaintyWeighting(2, UncertaintyWeightingOptions().init(nan)), "init");
  EXPECT_MTL_ERROR(FixedWeighting(2, FixedWeightingOptions().weights({1.0})), "FixedWeightingOptions.weights",
                   "one weight per task (2), got 1");
  EXPECT_MTL_ERROR(FixedWeighting(2, FixedWeightingOptions().weights({1.0, -1.0})), "FixedWeightingOptions.weights",
                   ">= 0");
}
