#include "heads/classification.h"

#include "mtl/config/config_node.h"

namespace mtl {

ClassificationHeadImpl::ClassificationHeadImpl(int64_t in_features, int64_t num_classes,
                                               MlpHeadOptions options)
    : MlpHeadImpl(in_features, num_classes, std::move(options)) {}

at::Tensor ClassificationHeadImpl::predict(const at::Tensor& output) const {
  return output.argmax(1);
}

Head make_classification_head(const ConfigNode& options, const HeadContext& ctx) {
  MlpHeadOptions mlp = MlpHeadOptions::from_config(options);
  const int64_t c = ctx.label.size;
  int64_t num_classes = options.get<int64_t>("num_classes", c);
  options.check(num_classes == c, "num_classes",
                "expected " + std::to_string(c) + " (the number of classes of label '" + ctx.label.name +
                    "'), got " + std::to_string(num_classes));
  return std::make_shared<ClassificationHeadImpl>(ctx.in_features, num_classes, std::move(mlp));
}

at::Tensor cross_entropy_loss(const at::Tensor& logits, const at::Tensor& target,
                              const CrossEntropyOptions& options) {
  TORCH_CHECK(logits.dim() == 2 && target.dim() == 1 && target.size(0) == logits.size(0),
              "cross_entropy: expected logits [B, C] and targets [B], got ", logits.sizes(), " and ",
              target.sizes());
  const int64_t c = logits.size(1);
  const double eps = options.label_smoothing;
  at::Tensor y = target.to(torch::kLong).unsqueeze(1);
  at::Tensor log_p = torch::log_softmax(logits, 1);
  at::Tensor per_example = -log_p.gather(1, y).squeeze(1);  // [B]
  if (eps > 0) per_example = (1 - eps) * per_example - (eps / c) * log_p.sum(1);
  if (!options.class_weights.empty()) {
    TORCH_CHECK(static_cast<int64_t>(options.class_weights.size()) == c, "cross_entropy: ",
                options.class_weights.size(), " class weights for ", c, " classes");
    at::Tensor w = torch::tensor(options.class_weights, torch::kDouble).to(logits.options());
    per_example = per_example * w.index_select(0, y.squeeze(1));
  }
  return per_example.mean();
}

LossFn make_cross_entropy_loss(const ConfigNode& n, const LabelInfo& label) {
  CrossEntropyOptions o;
  o.label_smoothing = n.get<double>("label_smoothing", o.label_smoothing);
  n.check(o.label_smoothing >= 0.0 && o.label_smoothing < 1.0, "label_smoothing",
          "expected a value in [0, 1), got " + std::to_string(o.label_smoothing));
  // An empty list (what the resolved config records when the key is absent) means "no weights".
  o.class_weights = n.get<std::vector<double>>("class_weights", {});
  if (!o.class_weights.empty()) {
    const std::string expected = "expected a list of " + std::to_string(label.size) +
                                 " positive numbers (one per class of label '" + label.name + "')";
    n.check(static_cast<int64_t>(o.class_weights.size()) == label.size, "class_weights",
            expected + ", got " + std::to_string(o.class_weights.size()) + " numbers");
    for (double w : o.class_weights)
      n.check(w > 0, "class_weights", expected + ", got " + std::to_string(w));
  }
  return [o](const at::Tensor& output, const at::Tensor& target) {
    return cross_entropy_loss(output, target, o);
  };
}

}  // namespace mtl
