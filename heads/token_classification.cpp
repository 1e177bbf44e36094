#include "heads/token_classification.h"

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

TokenClassificationHeadOptions TokenClassificationHeadOptions::from_config(const ConfigNode& options,
                                                                           const HeadContext& ctx) {
  const int64_t c = ctx.label.size;
  TokenClassificationHeadOptions o(MlpHeadOptions::from_config(options, ctx.in_features, c));
  int64_t num_tags = options.get<int64_t>("num_tags", c);
  options.check(num_tags == c, "num_tags",
                "expected " + std::to_string(c) + " (the number of tags of label '" + ctx.label.name + "'), got " +
                    std::to_string(num_tags));
  return o;
}

at::Tensor TokenClassificationHeadImpl::predict(const at::Tensor& output) const { return output.argmax(-1); }

Head make_token_classification_head(const ConfigNode& options, const HeadContext& ctx) {
  return std::make_shared<TokenClassificationHeadImpl>(TokenClassificationHeadOptions::from_config(options, ctx));
}

TokenCrossEntropyLossOptions TokenCrossEntropyLossOptions::from_config(const ConfigNode& n) {
  TokenCrossEntropyLossOptions o;
  o.label_smoothing(n.get<double>("label_smoothing", o.label_smoothing()));
  validate_config(n, [&] { o.validate(); });
  return o;
}

void TokenCrossEntropyLossOptions::validate() const {
  check(label_smoothing_ >= 0.0 && label_smoothing_ < 1.0, "label_smoothing",
        "expected a value in [0, 1), got " + std::to_string(label_smoothing_));
}

at::Tensor token_cross_entropy_loss(const at::Tensor& logits, const at::Tensor& target,
                                    const TokenCrossEntropyLossOptions& options) {
  TORCH_CHECK(logits.dim() == 3 && target.dim() == 2 && target.size(0) == logits.size(0) &&
                  target.size(1) == logits.size(1),
              "token_cross_entropy: expected logits [B, L, C] and tags [B, L], got ", logits.sizes(), " and ",
              target.sizes());
  const int64_t c = logits.size(2);
  const double eps = options.label_smoothing();
  at::Tensor y = target.to(at::kLong);
  at::Tensor tagged = y.ne(kIgnoreIndex);                                     // [B, L]
  at::Tensor log_p = at::log_softmax(logits, 2);
  at::Tensor nll = -log_p.gather(2, y.clamp_min(0).unsqueeze(2)).squeeze(2);  // [B, L]; ignored rows masked next
  if (eps > 0) nll = (1 - eps) * nll - (eps / c) * log_p.sum(2);
  at::Tensor w = tagged.to(logits.scalar_type());
  at::Tensor per_example = (nll * w).sum(1) / w.sum(1).clamp_min(1);       // 0 for an example without tags
  return per_example.mean();
}

TokenCrossEntropyLoss::TokenCrossEntropyLoss(TokenCrossEntropyLossOptions options) : options_(std::move(options)) {
  validate_options("TokenCrossEntropyLossOptions", [&] { options_.validate(); });
}

at::Tensor TokenCrossEntropyLoss::operator()(const at::Tensor& logits, const at::Tensor& target) const {
  return token_cross_entropy_loss(logits, target, options_);
}

LossFn make_token_cross_entropy_loss(const ConfigNode& n, const LabelInfo&) {
  return TokenCrossEntropyLoss(TokenCrossEntropyLossOptions::from_config(n));
}

}  // namespace mtl
