#include "heads/multilabel.h"

#include "mtl/config/config_node.h"

namespace mtl {

MultiLabelHeadImpl::MultiLabelHeadImpl(int64_t in_features, int64_t num_labels, MlpHeadOptions options)
    : MlpHeadImpl(in_features, num_labels, std::move(options)) {}

at::Tensor MultiLabelHeadImpl::predict(const at::Tensor& output) const {
  return (output > 0).to(output.scalar_type());
}

Head make_multilabel_head(const ConfigNode& options, const HeadContext& ctx) {
  MlpHeadOptions mlp = MlpHeadOptions::from_config(options);
  return std::make_shared<MultiLabelHeadImpl>(ctx.in_features, ctx.label.size, std::move(mlp));
}

at::Tensor bce_with_logits_loss(const at::Tensor& logits, const at::Tensor& target,
                                const BceWithLogitsOptions& options) {
  TORCH_CHECK(logits.dim() == 2 && logits.sizes() == target.sizes(),
              "bce_with_logits: expected logits and targets of the same shape [B, L], got ", logits.sizes(),
              " and ", target.sizes());
  at::Tensor pos_weight;
  if (!options.pos_weight.empty()) {
    TORCH_CHECK(static_cast<int64_t>(options.pos_weight.size()) == logits.size(1), "bce_with_logits: ",
                options.pos_weight.size(), " pos_weight values for ", logits.size(1), " labels");
    pos_weight = torch::tensor(options.pos_weight, torch::kDouble).to(logits.options());
  }
  // Mean reduction over all B * L elements: every example has L elements, so this is the mean over
  // examples of the per-example mean over labels.
  return torch::binary_cross_entropy_with_logits(logits, target.to(logits.scalar_type()), {}, pos_weight,
                                                 at::Reduction::Mean);
}

LossFn make_bce_with_logits_loss(const ConfigNode& n, const LabelInfo& label) {
  BceWithLogitsOptions o;
  // An empty list (what the resolved config records when the key is absent) means "no weights".
  o.pos_weight = n.get<std::vector<double>>("pos_weight", {});
  if (!o.pos_weight.empty()) {
    const std::string expected = "expected a list of " + std::to_string(label.size) +
                                 " positive numbers (one per label of '" + label.name + "')";
    n.check(static_cast<int64_t>(o.pos_weight.size()) == label.size, "pos_weight",
            expected + ", got " + std::to_string(o.pos_weight.size()) + " numbers");
    for (double w : o.pos_weight) n.check(w > 0, "pos_weight", expected + ", got " + std::to_string(w));
  }
  return [o](const at::Tensor& output, const at::Tensor& target) {
    return bce_with_logits_loss(output, target, o);
  };
}

}  // namespace mtl
