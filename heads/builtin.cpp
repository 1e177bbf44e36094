// The explicit list of built-in heads and losses: one line per component.
#include "heads/head.h"

#include "heads/classification.h"
#include "heads/dense.h"
#include "heads/multilabel.h"
#include "heads/regression.h"
#include "heads/token_classification.h"

namespace mtl {

namespace {
void register_builtin_heads(Registry<HeadEntry>& r) {
  r.add("classification", {make_classification_head, LabelKind::kClass, "cross_entropy", {"accuracy"}});
  r.add("multilabel", {make_multilabel_head, LabelKind::kMultiLabel, "bce_with_logits", {"accuracy", "macro_f1"}});
  r.add("regression", {make_regression_head, LabelKind::kReal, "mse", {"mae", "rmse", "r2"}});
  r.add("token_classification",
        {make_token_classification_head, LabelKind::kTokenClass, "token_cross_entropy", {"span_f1"}});
  r.add("segmentation", {make_segmentation_head, LabelKind::kPixelClass, "cross_entropy", {"miou", "pixel_accuracy"}});
  r.add("dense_regression", {make_dense_regression_head, LabelKind::kPixelReal, "mse", {"abs_err", "rel_err"}});
}
void register_builtin_losses(Registry<LossEntry>& r) {
  r.add("cross_entropy", {make_cross_entropy_loss, {LabelKind::kClass, LabelKind::kPixelClass}});
  r.add("bce_with_logits", {make_bce_with_logits_loss, {LabelKind::kMultiLabel}});
  r.add("mse", {make_mse_loss, {LabelKind::kReal, LabelKind::kPixelReal}});
  r.add("l1", {make_l1_loss, {LabelKind::kReal, LabelKind::kPixelReal}});
  r.add("huber", {make_huber_loss, {LabelKind::kReal, LabelKind::kPixelReal}});
  r.add("token_cross_entropy", {make_token_cross_entropy_loss, {LabelKind::kTokenClass}});
}
}  // namespace

Registry<HeadEntry>& head_registry() {
  static Registry<HeadEntry> r = [] {
    Registry<HeadEntry> reg("head");
    register_builtin_heads(reg);
    return reg;
  }();
  return r;
}

Registry<LossEntry>& loss_registry() {
  static Registry<LossEntry> r = [] {
    Registry<LossEntry> reg("loss");
    register_builtin_losses(reg);
    return reg;
  }();
  return r;
}

}  // namespace mtl
