// ParallelEngine on text: a transformer or rnn trunk with a sequence-classification head and a
// token_classification head, on a batch whose rows have very different lengths (so most shards carry padding
// columns none of their rows need). N-thread gradients must equal the single-thread full-batch gradients.
#include <torch/torch.h>

#include "backbones/backbone.h"
#include "heads/head.h"
#include "mtl/config/config_node.h"
#include "mtl/engine/engine.h"
#include "mtl/engine/parallel_engine.h"
#include "mtl/weighting/weighting.h"
#include "test_util.h"

namespace {

constexpr int64_t kVocab = 40;

mtl::DatasetSchema schema() {
  mtl::DatasetSchema s;
  s.inputs.push_back({"text", {48}, mtl::InputKind::kTokens, kVocab});
  s.labels.push_back({"topic", mtl::LabelKind::kClass, 3, {"a", "b", "c"}});
  s.labels.push_back({"ner", mtl::LabelKind::kTokenClass, 5, {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"}});
  return s;
}

struct TextModel {
  mtl::MultiTaskModel model{nullptr};
  std::vector<mtl::TaskSpec> tasks;
  std::unique_ptr<mtl::Weighting> weighting;
};

TextModel build(const std::string& backbone_yaml) {
  const mtl::DatasetSchema s = schema();
  mtl::Config cfg = mtl::Config::from_string("backbone: " + backbone_yaml + "\nhead: {hidden: [8]}\nw: ew\n", "t.yaml");
  mtl::ConfigNode bn = cfg.root().component("backbone");
  mtl::Backbone backbone = mtl::backbone_registry().get(bn.type())(bn, s);
  TextModel m;
  std::vector<mtl::Head> heads;
  std::vector<std::string> names;
  for (const auto& [task, head_type] : {std::pair<std::string, std::string>{"topic", "classification"},
                                        std::pair<std::string, std::string>{"ner", "token_classification"}}) {
    const mtl::LabelInfo& label = *s.label(task);
    const mtl::HeadEntry& entry = mtl::head_registry().get(head_type);
    heads.push_back(entry.make(cfg.root().child("head"), {backbone->output_dim(), label}));
    mtl::TaskSpec spec;
    spec.name = task;
    spec.head_type = head_type;
    spec.label = label;
    spec.weight = task == "topic" ? 1.0 : 0.5;
    spec.loss_type = entry.default_loss;
    mtl::ConfigNode ln = cfg.root().component("loss_" + task, entry.default_loss);
    spec.loss = mtl::loss_registry().get(ln.type()).make(ln, label);
    m.tasks.push_back(spec);
    names.push_back(task);
  }
  m.model = mtl::MultiTaskModel(backbone, names, heads);
  mtl::ConfigNode wn = cfg.root().component("w");
  m.weighting = mtl::weighting_registry().get(wn.type())(wn, {names, {1.0, 0.5}});
  return m;
}

// 11 rows of lengths 1..20 (<cls> first), padded to 20; tags at real tokens except <cls> and a few
// "later sub-word pieces".
mtl::Batch text_batch() {
  torch::manual_seed(3);
  const std::vector<int64_t> lengths{20, 3, 7, 1, 15, 9, 2, 18, 5, 11, 4};
  const int64_t B = static_cast<int64_t>(lengths.size()), L = 20;
  at::Tensor ids = torch::randint(mtl::kFirstPieceId, kVocab, {B, L}, torch::kLong);
  at::Tensor tags = torch::randint(0, 5, {B, L}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    ids[b][0] = mtl::kClsTokenId;
    tags[b][0] = mtl::kIgnoreIndex;
    ids[b].slice(0, lengths[b]).fill_(mtl::kPadTokenId);
    tags[b].slice(0, lengths[b]).fill_(mtl::kIgnoreIndex);
    if (lengths[b] > 4) tags[b][3] = mtl::kIgnoreIndex;
  }
  mtl::Batch batch;
  batch.size = B;
  batch.inputs["text"] = ids;
  batch.targets["topic"] = torch::randint(0, 3, {B}, torch::kLong);
  batch.targets["ner"] = tags;
  return batch;
}

std::vector<at::Tensor> grads_of(mtl::MultiTaskModel& m) {
  std::vector<at::Tensor> g;
  for (auto& p : m->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return g;
}

}  // namespace

TEST(TextParallelEngine, GradientsMatchTheSingleThreadFullBatch) {
  const mtl::Batch batch = text_batch();
  for (auto dtype : {at::kFloat, at::kDouble}) {
    const double tolerance = dtype == at::kDouble ? 1e-10 : 1e-5;
    for (std::string bb : {"{type: transformer, dim: 16, heads: 4, layers: 2, ffn_dim: 24, dropout: 0}",
                           "{type: transformer, dim: 16, heads: 2, layers: 1, ffn_dim: 24, dropout: 0, "
                           "pooling: mean, positions: sinusoidal}",
                           "{type: rnn, dim: 12, hidden: 8, layers: 2}",
                           "{type: rnn, cell: gru, dim: 12, hidden: 8, pooling: max}"}) {
      TextModel m = build(bb);
      m.model->to(dtype);
      auto serial = mtl::make_serial_engine(m.model, m.tasks, *m.weighting);
      auto ref = serial->compute_gradients(batch, {});
      auto reference = grads_of(m.model);
      ASSERT_TRUE(ref.present[0] && ref.present[1]);
      ASSERT_GT(ref.losses[1], 0.0);
      for (int threads : {1, 2, 3}) {
        auto engine = mtl::make_parallel_engine(m.model, m.tasks, *m.weighting, {threads, 1, 0});
        auto r = engine->compute_gradients(batch, {});
        std::string what = bb + " " + std::string(c10::toString(dtype)) + " threads " + std::to_string(threads);
        for (size_t t = 0; t < 2; ++t) EXPECT_NEAR(r.losses[t], ref.losses[t], 1e-6) << what;
        auto got = grads_of(m.model);
        ASSERT_EQ(got.size(), reference.size());
        size_t k = 0;
        for (const auto& kv : m.model->named_parameters()) {
          double scale = std::max(1e-300, reference[k].to(at::kDouble).norm().item<double>());
          double err = (got[k].to(at::kDouble) - reference[k].to(at::kDouble)).norm().item<double>();
          EXPECT_LE(err / scale, tolerance) << what << ": " << kv.key() << " relative error " << err / scale;
          ++k;
        }
      }
    }
  }
}
