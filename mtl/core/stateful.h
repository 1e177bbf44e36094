// Stateful: a part of a run whose state goes into checkpoints beside the model and the optimizer (a weighting
// method's running averages or learned values, ...). Checkpoints know only this interface, not the parts.
//   struct Counter : mtl::Stateful {
//     at::Tensor n = at::zeros({1});
//     void save(torch::serialize::OutputArchive& a) const override { a.write("n", n); }
//     void load(torch::serialize::InputArchive& a) override { a.read("n", n); }
//   };
#pragma once

#include <torch/serialize/archive.h>

namespace mtl {

class Stateful {
 public:
  virtual ~Stateful() = default;
  /// Writes the state into `archive`.
  virtual void save(torch::serialize::OutputArchive& archive) const = 0;
  /// Restores what save() wrote; throws (c10::Error or mtl::Error) when the archive does not fit.
  virtual void load(torch::serialize::InputArchive& archive) = 0;
};

}  // namespace mtl
