#include "heads/token_classification.h"

#include "mtl/config/config_node.h"

namespace mtl {

TokenClassificationHeadImpl::TokenClassificationHeadImpl(int64_t in_features, int64_t num_tags,
                                                         MlpHeadOptions options)
    : MlpHeadImpl(in_features, num_tags, std::move(options)) {}

at::Tensor TokenClassificationHeadImpl::predict(const at::Tensor& output) const { return output.argmax(-1); }

Head make_token_classification_head(const ConfigNode& options, const HeadContext& ctx) {
  MlpHeadOptions mlp = MlpHeadOptions::from_config(options);
  const int64_t c = ctx.label.size;
  int64_t num_tags = options.get<int64_t>("num_tags", c);
  options.check(num_tags == c, "num_tags",
                "expected " + std::to_string(c) + " (the number of tags of label '" + ctx.label.name + "'), got " +
                    std::to_string(num_tags));
  return std::make_shared<TokenClassificationHeadImpl>(ctx.in_features, num_tags, std::move(mlp));
}

at::Tensor token_cross_entropy_loss(const at::Tensor& logits, const at::Tensor& target, double label_smoothing) {
  TORCH_CHECK(logits.dim() == 3 && target.dim() == 2 && target.size(0) == logits.size(0) &&
                  target.size(1) == logits.size(1),
              "token_cross_entropy: expected logits [B, L, C] and tags [B, L], got ", logits.sizes(), " and ",
              target.sizes());
  const int64_t c = logits.size(2);
  at::Tensor y = target.to(at::kLong);
  at::Tensor tagged = y.ne(kIgnoreIndex);                                     // [B, L]
  at::Tensor log_p = at::log_softmax(logits, 2);
  at::Tensor nll = -log_p.gather(2, y.clamp_min(0).unsqueeze(2)).squeeze(2);  // [B, L]; ignored rows masked next
  if (label_smoothing > 0) nll = (1 - label_smoothing) * nll - (label_smoothing / c) * log_p.sum(2);
  at::Tensor w = tagged.to(logits.scalar_type());
  at::Tensor per_example = (nll * w).sum(1) / w.sum(1).clamp_min(1);       // 0 for an example without tags
  return per_example.mean();
}

LossFn make_token_cross_entropy_loss(const ConfigNode& n, const LabelInfo&) {
  const double eps = n.get<double>("label_smoothing", 0.0);
  n.check(eps >= 0.0 && eps < 1.0, "label_smoothing", "expected a value in [0, 1), got " + std::to_string(eps));
  return [eps](const at::Tensor& output, const at::Tensor& target) {
    return token_cross_entropy_loss(output, target, eps);
  };
}

}  // namespace mtl
