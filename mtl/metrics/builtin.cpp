// The explicit list of built-in metrics: one line per metric.
#include "mtl/metrics/metric.h"

#include "mtl/metrics/classification_metrics.h"
#include "mtl/metrics/dense_metrics.h"
#include "mtl/metrics/regression_metrics.h"
#include "mtl/metrics/span_metrics.h"

namespace mtl {

namespace {
void register_builtin_metrics(Registry<MetricEntry>& r) {
  r.add("accuracy", {make_accuracy, {LabelKind::kClass, LabelKind::kMultiLabel}});
  r.add("top_k_accuracy", {make_top_k_accuracy, {LabelKind::kClass}});
  r.add("macro_f1", {make_macro_f1, {LabelKind::kClass, LabelKind::kMultiLabel}});
  r.add("mae", {make_mae, {LabelKind::kReal, LabelKind::kPixelReal}});
  r.add("rmse", {make_rmse, {LabelKind::kReal, LabelKind::kPixelReal}});
  r.add("r2", {make_r2, {LabelKind::kReal}});
  r.add("span_f1", {make_span_f1, {LabelKind::kTokenClass}});
  r.add("span_precision", {make_span_precision, {LabelKind::kTokenClass}});
  r.add("span_recall", {make_span_recall, {LabelKind::kTokenClass}});
  r.add("token_accuracy", {make_token_accuracy, {LabelKind::kTokenClass}});
  r.add("pixel_accuracy", {make_pixel_accuracy, {LabelKind::kPixelClass}});
  r.add("miou", {make_miou, {LabelKind::kPixelClass}});
  r.add("abs_err", {make_abs_err, {LabelKind::kPixelReal}});
  r.add("rel_err", {make_rel_err, {LabelKind::kPixelReal}});
}
}  // namespace

Registry<MetricEntry>& metric_registry() {
  static Registry<MetricEntry> r = [] {
    Registry<MetricEntry> reg("metric");
    register_builtin_metrics(reg);
    return reg;
  }();
  return r;
}

}  // namespace mtl
