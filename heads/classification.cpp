#include "heads/classification.h"

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

ClassificationHeadOptions ClassificationHeadOptions::from_config(const ConfigNode& options, const HeadContext& ctx) {
  const int64_t c = ctx.label.size;
  ClassificationHeadOptions o(MlpHeadOptions::from_config(options, ctx.in_features, c));
  int64_t num_classes = options.get<int64_t>("num_classes", c);
  options.check(num_classes == c, "num_classes",
                "expected " + std::to_string(c) + " (the number of classes of label '" + ctx.label.name +
                    "'), got " + std::to_string(num_classes));
  return o;
}

at::Tensor ClassificationHeadImpl::predict(const at::Tensor& output) const { return output.argmax(1); }

Head make_classification_head(const ConfigNode& options, const HeadContext& ctx) {
  return std::make_shared<ClassificationHeadImpl>(ClassificationHeadOptions::from_config(options, ctx));
}

CrossEntropyLossOptions CrossEntropyLossOptions::from_config(const ConfigNode& n, const LabelInfo& label) {
  CrossEntropyLossOptions o;
  o.label_smoothing(n.get<double>("label_smoothing", o.label_smoothing()));
  validate_config(n, [&] { o.validate(); });
  // An empty list (what the resolved config records when the key is absent) means "no weights".
  o.class_weights(n.get<std::vector<double>>("class_weights", {}));
  if (!o.class_weights().empty()) {
    const std::string expected = "expected a list of " + std::to_string(label.size) +
                                 " positive numbers (one per class of label '" + label.name + "')";
    n.check(static_cast<int64_t>(o.class_weights().size()) == label.size, "class_weights",
            expected + ", got " + std::to_string(o.class_weights().size()) + " numbers");
    for (double w : o.class_weights()) n.check(w > 0, "class_weights", expected + ", got " + std::to_string(w));
  }
  return o;
}

void CrossEntropyLossOptions::validate() const {
  check(label_smoothing_ >= 0.0 && label_smoothing_ < 1.0, "label_smoothing",
        "expected a value in [0, 1), got " + std::to_string(label_smoothing_));
  for (double w : class_weights_)
    check(w > 0, "class_weights", "expected positive numbers (one per class), got " + std::to_string(w));
}

at::Tensor cross_entropy_loss(const at::Tensor& logits, const at::Tensor& target,
                              const CrossEntropyLossOptions& options) {
  if (logits.dim() == 4) {  // per-pixel classes: every pixel an example (each example has H x W of them, so the
                            // mean over pixels is the mean over examples of their own means)
    TORCH_CHECK(target.dim() == 3 && target.size(0) == logits.size(0) && target.sizes().slice(1) == logits.sizes().slice(2),
                "cross_entropy: expected logits [B, C, H, W] and targets [B, H, W], got ", logits.sizes(), " and ",
                target.sizes());
    return cross_entropy_loss(logits.movedim(1, 3).reshape({-1, logits.size(1)}), target.reshape({-1}), options);
  }
  TORCH_CHECK(logits.dim() == 2 && target.dim() == 1 && target.size(0) == logits.size(0),
              "cross_entropy: expected logits [B, C] and targets [B], got ", logits.sizes(), " and ",
              target.sizes());
  const int64_t c = logits.size(1);
  const double eps = options.label_smoothing();
  const std::vector<double>& weights = options.class_weights();
  at::Tensor y = target.to(torch::kLong).unsqueeze(1);
  at::Tensor log_p = torch::log_softmax(logits, 1);
  at::Tensor per_example = -log_p.gather(1, y).squeeze(1);  // [B]
  if (eps > 0) per_example = (1 - eps) * per_example - (eps / c) * log_p.sum(1);
  if (!weights.empty()) {
    TORCH_CHECK(static_cast<int64_t>(weights.size()) == c, "cross_entropy: ", weights.size(),
                " class weights for ", c, " classes");
    at::Tensor w = torch::tensor(weights, torch::kDouble).to(logits.options());
    per_example = per_example * w.index_select(0, y.squeeze(1));
  }
  return per_example.mean();
}

CrossEntropyLoss::CrossEntropyLoss(CrossEntropyLossOptions options) : options_(std::move(options)) {
  validate_options("CrossEntropyLossOptions", [&] { options_.validate(); });
}

at::Tensor CrossEntropyLoss::operator()(const at::Tensor& logits, const at::Tensor& target) const {
  return cross_entropy_loss(logits, target, options_);
}

LossFn make_cross_entropy_loss(const ConfigNode& n, const LabelInfo& label) {
  return CrossEntropyLoss(CrossEntropyLossOptions::from_config(n, label));
}

}  // namespace mtl
