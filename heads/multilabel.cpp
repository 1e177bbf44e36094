#include "heads/multilabel.h"

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

MultiLabelHeadOptions MultiLabelHeadOptions::from_config(const ConfigNode& options, const HeadContext& ctx) {
  return MultiLabelHeadOptions(MlpHeadOptions::from_config(options, ctx.in_features, ctx.label.size));
}

at::Tensor MultiLabelHeadImpl::predict(const at::Tensor& output) const {
  return (output > 0).to(output.scalar_type());
}

Head make_multilabel_head(const ConfigNode& options, const HeadContext& ctx) {
  return std::make_shared<MultiLabelHeadImpl>(MultiLabelHeadOptions::from_config(options, ctx));
}

BceWithLogitsLossOptions BceWithLogitsLossOptions::from_config(const ConfigNode& n, const LabelInfo& label) {
  BceWithLogitsLossOptions o;
  // An empty list (what the resolved config records when the key is absent) means "no weights".
  o.pos_weight(n.get<std::vector<double>>("pos_weight", {}));
  if (!o.pos_weight().empty()) {
    const std::string expected = "expected a list of " + std::to_string(label.size) +
                                 " positive numbers (one per label of '" + label.name + "')";
    n.check(static_cast<int64_t>(o.pos_weight().size()) == label.size, "pos_weight",
            expected + ", got " + std::to_string(o.pos_weight().size()) + " numbers");
    for (double w : o.pos_weight()) n.check(w > 0, "pos_weight", expected + ", got " + std::to_string(w));
  }
  return o;
}

void BceWithLogitsLossOptions::validate() const {
  for (double w : pos_weight_)
    check(w > 0, "pos_weight", "expected positive numbers (one per label), got " + std::to_string(w));
}

at::Tensor bce_with_logits_loss(const at::Tensor& logits, const at::Tensor& target,
                                const BceWithLogitsLossOptions& options) {
  TORCH_CHECK(logits.dim() == 2 && logits.sizes() == target.sizes(),
              "bce_with_logits: expected logits and targets of the same shape [B, L], got ", logits.sizes(),
              " and ", target.sizes());
  const std::vector<double>& weights = options.pos_weight();
  at::Tensor pos_weight;
  if (!weights.empty()) {
    TORCH_CHECK(static_cast<int64_t>(weights.size()) == logits.size(1), "bce_with_logits: ", weights.size(),
                " pos_weight values for ", logits.size(1), " labels");
    pos_weight = torch::tensor(weights, torch::kDouble).to(logits.options());
  }
  // Mean reduction over all B * L elements: every example has L elements, so this is the mean over
  // examples of the per-example mean over labels.
  return torch::binary_cross_entropy_with_logits(logits, target.to(logits.scalar_type()), {}, pos_weight,
                                                 at::Reduction::Mean);
}

BceWithLogitsLoss::BceWithLogitsLoss(BceWithLogitsLossOptions options) : options_(std::move(options)) {
  validate_options("BceWithLogitsLossOptions", [&] { options_.validate(); });
}

at::Tensor BceWithLogitsLoss::operator()(const at::Tensor& logits, const at::Tensor& target) const {
  return bce_with_logits_loss(logits, target, options_);
}

LossFn make_bce_with_logits_loss(const ConfigNode& n, const LabelInfo& label) {
  return BceWithLogitsLoss(BceWithLogitsLossOptions::from_config(n, label));
}

}  // namespace mtl
