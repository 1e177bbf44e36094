// The explicit list of built-in datasets: one line per dataset source.
#include "mtl/data/dataset.h"
#include "mtl/data/csv_dataset.h"
#include "mtl/data/idx_dataset.h"
#include "mtl/data/multi_fashion.h"
#include "mtl/data/text/conll_dataset.h"
#include "mtl/data/text/text_dataset.h"

namespace mtl {

const char* to_string(Split split) { return split == Split::kTrain ? "train" : "test"; }

namespace {
void register_builtin_datasets(Registry<DatasetFactory>& r) {
  r.add("multi_fashion", make_multi_fashion_source);
  r.add("fashion_mnist", make_fashion_mnist_source);
  r.add("idx", make_idx_source);
  r.add("csv", make_csv_source);
  r.add("text", make_text_source);
  r.add("conll", make_conll_source);
}
}  // namespace

Registry<DatasetFactory>& dataset_registry() {
  static Registry<DatasetFactory> r = [] {
    Registry<DatasetFactory> reg("dataset");
    register_builtin_datasets(reg);
    return reg;
  }();
  return r;
}

}  // namespace mtl
