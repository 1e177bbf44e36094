#include "mtl/core/weight_init.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/rnn.h>

#include <cmath>

#include "mtl/core/error.h"

namespace mtl {

namespace {

void uniform(at::Tensor& t, double bound, at::Generator& gen) {
  if (t.defined()) t.uniform_(-bound, bound, gen);
}

// Linear and convolution layers: fan_in = in_features (x kernel elements / groups).
void reset_affine(at::Tensor& weight, at::Tensor& bias, at::Generator& gen) {
  const int64_t fan_in = weight.size(0) > 0 ? weight.numel() / weight.size(0) : 1;
  const double bound = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(fan_in, 1)));
  uniform(weight, bound, gen);
  uniform(bias, bound, gen);
}

// The module's own parameters (not its children's) from its type; false for a type this file does not know.
bool reset_own(torch::nn::Module& m, at::Generator& gen) {
  if (auto* l = m.as<torch::nn::Linear>()) return reset_affine(l->weight, l->bias, gen), true;
  if (auto* c = m.as<torch::nn::Conv1d>()) return reset_affine(c->weight, c->bias, gen), true;
  if (auto* c = m.as<torch::nn::Conv2d>()) return reset_affine(c->weight, c->bias, gen), true;
  if (auto* c = m.as<torch::nn::Conv3d>()) return reset_affine(c->weight, c->bias, gen), true;
  if (auto* e = m.as<torch::nn::Embedding>()) {
    e->weight.normal_(0.0, 1.0, gen);
    if (auto pad = e->options.padding_idx()) e->weight[*pad].zero_();
    return true;
  }
  auto reset_norm = [](at::Tensor& w, at::Tensor& b) {
    if (w.defined()) w.fill_(1.0);
    if (b.defined()) b.zero_();
  };
  if (auto* n = m.as<torch::nn::LayerNorm>()) return reset_norm(n->weight, n->bias), true;
  if (auto* n = m.as<torch::nn::BatchNorm1d>()) return n->reset_running_stats(), reset_norm(n->weight, n->bias), true;
  if (auto* n = m.as<torch::nn::BatchNorm2d>()) return n->reset_running_stats(), reset_norm(n->weight, n->bias), true;
  auto reset_rnn = [&](int64_t hidden) {
    for (auto& p : m.parameters(/*recurse=*/false)) uniform(p, 1.0 / std::sqrt(static_cast<double>(hidden)), gen);
  };
  if (auto* r = m.as<torch::nn::LSTM>()) return reset_rnn(r->options.hidden_size()), true;
  if (auto* r = m.as<torch::nn::GRU>()) return reset_rnn(r->options.hidden_size()), true;
  if (auto* r = m.as<torch::nn::RNN>()) return reset_rnn(r->options.hidden_size()), true;
  return false;
}

}  // namespace

void reset_module_parameters(torch::nn::Module& module, at::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (const auto& item : module.named_modules()) {
    torch::nn::Module& m = *item.value();
    if (reset_own(m, gen) || m.named_parameters(/*recurse=*/false).is_empty()) continue;
    throw Error(item.key().empty() ? m.name() : item.key(),
                "reset_module_parameters: module type '" + m.name() +
                    "' holds parameters of its own but has no initialisation rule (mtl/core/weight_init.cpp)");
  }
}

}  // namespace mtl
