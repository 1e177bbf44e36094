// TaskSpec and the core interfaces it uses (LossFn, Stateful) need nothing above mtl/core: this file includes
// core headers only, so it stops compiling if one of them starts to depend on heads/ or mtl/metrics/ again.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "mtl/core/loss.h"
#include "mtl/core/stateful.h"
#include "mtl/core/task.h"

namespace {
// A Stateful part with one counter, as a checkpoint would see it.
struct Counter : mtl::Stateful {
  int64_t n = 0;
  void save(torch::serialize::OutputArchive& a) const override { a.write("n", c10::IValue(n)); }
  void load(torch::serialize::InputArchive& a) override {
    c10::IValue v;
    a.read("n", v);
    n = v.toInt();
  }
};
}  // namespace

TEST(Task, SpecHoldsItsLossFunction) {
  mtl::TaskSpec spec;
  spec.name = "age";
  spec.loss = [](const at::Tensor& out, const at::Tensor& y) { return (out - y).pow(2).mean(); };
  // (1 - 0)^2 and (3 - 1)^2: mean 2.5.
  at::Tensor l = spec.loss(torch::tensor({1.0, 3.0}), torch::tensor({0.0, 1.0}));
  EXPECT_DOUBLE_EQ(l.item<double>(), 2.5);
  EXPECT_FALSE(static_cast<bool>(spec.make_metrics));
}

TEST(Stateful, SaveAndLoadThroughAnArchive) {
  Counter a;
  a.n = 41;
  torch::serialize::OutputArchive out;
  a.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  Counter b;
  torch::serialize::InputArchive in;
  std::istringstream ibytes(bytes.str());
  in.load_from(ibytes);
  static_cast<mtl::Stateful&>(b).load(in);
  EXPECT_EQ(b.n, 41);
}
