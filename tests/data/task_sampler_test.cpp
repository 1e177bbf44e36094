// Task samplers (which dataset each step draws from), mixture epochs, length bucketing and the mixture
// dataset that serves tasks from different datasets.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <numeric>
#include <set>

#include "mtl/data/mixture.h"
#include "mtl/data/sampler.h"
#include "mtl/data/tensor_dataset.h"

namespace {

std::vector<double> frequencies(const std::vector<int64_t>& drawn, size_t D) {
  std::vector<double> f(D, 0.0);
  for (int64_t d : drawn) f[d] += 1.0 / static_cast<double>(drawn.size());
  return f;
}

TEST(TaskSampler, ProbabilitiesFollowTheirDefinitions) {
  const std::vector<int64_t> sizes{1000, 4000, 250};
  auto p = [&](const std::string& type, double temperature = 2.0, std::vector<double> given = {}) {
    mtl::TaskSamplerOptions o;
    o.type = type;
    o.temperature = temperature;
    o.probabilities = std::move(given);
    return mtl::task_sampling_probabilities(o, sizes);
  };
  auto prop = p("proportional");
  EXPECT_NEAR(prop[0], 1000.0 / 5250, 1e-12);
  EXPECT_NEAR(prop[1], 4000.0 / 5250, 1e-12);
  for (double x : p("uniform")) EXPECT_NEAR(x, 1.0 / 3, 1e-12);
  for (double x : p("round_robin")) EXPECT_NEAR(x, 1.0 / 3, 1e-12);
  // Temperature 2: proportional to sqrt(size).
  auto temp = p("temperature", 2.0);
  const double z = std::sqrt(1000.0) + std::sqrt(4000.0) + std::sqrt(250.0);
  EXPECT_NEAR(temp[1], std::sqrt(4000.0) / z, 1e-12);
  EXPECT_NEAR(temp[2], std::sqrt(250.0) / z, 1e-12);
  // Temperature 1 is proportional.
  auto t1 = p("temperature", 1.0);
  for (size_t d = 0; d < 3; ++d) EXPECT_NEAR(t1[d], prop[d], 1e-12);
  auto given = p("given", 2.0, {0.5, 0.2, 0.3});
  EXPECT_NEAR(given[0], 0.5, 1e-12);
  EXPECT_NEAR(given[2], 0.3, 1e-12);
}

TEST(TaskSampler, EmpiricalFrequenciesMatchTheProbabilities) {
  const std::vector<int64_t> sizes{1000, 4000, 250};
  const int64_t steps = 200000;
  for (std::string type : {"proportional", "uniform", "temperature", "given"}) {
    SCOPED_TRACE(type);
    mtl::TaskSamplerOptions o;
    o.type = type;
    o.temperature = 3.0;
    o.probabilities = {0.1, 0.6, 0.3};
    auto want = mtl::task_sampling_probabilities(o, sizes);
    auto got = frequencies(mtl::sample_datasets(o, sizes, steps, 7, 0), sizes.size());
    for (size_t d = 0; d < sizes.size(); ++d) {
      // 5 binomial standard deviations.
      double sd = std::sqrt(want[d] * (1 - want[d]) / steps);
      EXPECT_NEAR(got[d], want[d], 5 * sd + 1e-12) << "dataset " << d;
    }
  }
}

TEST(TaskSampler, RoundRobinCyclesAndDrawsDependOnSeedAndEpochOnly) {
  mtl::TaskSamplerOptions rr;
  rr.type = "round_robin";
  auto cyc = mtl::sample_datasets(rr, {5, 50, 500}, 7, 1, 3);
  EXPECT_EQ(cyc, (std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0}));
  mtl::TaskSamplerOptions prop;
  auto a = mtl::sample_datasets(prop, {100, 300}, 500, 11, 2);
  EXPECT_EQ(a, mtl::sample_datasets(prop, {100, 300}, 500, 11, 2));
  EXPECT_NE(a, mtl::sample_datasets(prop, {100, 300}, 500, 11, 3));
  EXPECT_NE(a, mtl::sample_datasets(prop, {100, 300}, 500, 12, 2));
}

TEST(TaskSampler, MixtureEpochBatchesComeFromTheDrawnDatasetAndCycleThroughIt) {
  mtl::TaskSamplerOptions o;
  o.type = "uniform";
  const std::vector<int64_t> sizes{10, 1000};
  auto epoch = mtl::mixture_epoch(o, sizes, 400, 4, 5, 0);
  ASSERT_EQ(epoch.size(), 400u);
  auto drawn = mtl::sample_datasets(o, sizes, 400, 5, 0);
  std::map<int64_t, std::vector<int64_t>> seen;
  for (size_t s = 0; s < epoch.size(); ++s) {
    EXPECT_EQ(epoch[s].dataset, drawn[s]);
    EXPECT_EQ(epoch[s].indices.size(), 4u);
    for (int64_t i : epoch[s].indices) {
      EXPECT_GE(i, 0);
      EXPECT_LT(i, sizes[epoch[s].dataset]);
      seen[epoch[s].dataset].push_back(i);
    }
  }
  // The small dataset was drawn ~200 times: it went through ~80 shuffled passes, each a permutation.
  const auto& small = seen[0];
  for (size_t pass = 0; pass + 10 <= small.size(); pass += 10) {
    std::set<int64_t> one(small.begin() + pass, small.begin() + pass + 10);
    EXPECT_EQ(one.size(), 10u) << "pass starting at " << pass << " is not a permutation";
  }
  // A dataset smaller than the batch size gives all its examples.
  auto tiny = mtl::mixture_epoch(o, {3, 100}, 50, 8, 1, 0);
  for (const auto& b : tiny)
    if (b.dataset == 0) EXPECT_EQ(b.indices.size(), 3u);
}

TEST(TaskSampler, LengthBucketingCutsPaddingAndKeepsEveryExampleOnce) {
  const int64_t n = 2000, B = 32;
  std::vector<int64_t> lengths(n);
  for (int64_t i = 0; i < n; ++i) lengths[i] = 5 + (i * 7919) % 200;
  auto plain = mtl::make_batches(mtl::epoch_permutation(n, 3, 0), B, false);
  auto bucketed = mtl::bucket_by_length(plain, lengths, 3, 0);
  ASSERT_EQ(bucketed.size(), plain.size());
  auto padded = [&](const std::vector<std::vector<int64_t>>& batches) {
    int64_t cells = 0;
    for (const auto& b : batches) {
      int64_t mx = 0;
      for (int64_t i : b) mx = std::max(mx, lengths[i]);
      cells += mx * static_cast<int64_t>(b.size());
    }
    return cells;
  };
  const int64_t real = std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
  EXPECT_LT(padded(bucketed) - real, (padded(plain) - real) / 5) << "padding should drop by more than 5x";
  std::vector<int64_t> all;
  std::multiset<size_t> sizes_plain, sizes_bucketed;  // the same batch sizes (the short last one may move)
  for (size_t k = 0; k < bucketed.size(); ++k) {
    sizes_plain.insert(plain[k].size());
    sizes_bucketed.insert(bucketed[k].size());
    all.insert(all.end(), bucketed[k].begin(), bucketed[k].end());
  }
  EXPECT_EQ(sizes_plain, sizes_bucketed);
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(all[i], i);
  EXPECT_EQ(bucketed, mtl::bucket_by_length(plain, lengths, 3, 0)) << "deterministic";
  EXPECT_EQ(plain, mtl::bucket_by_length(plain, {}, 3, 0)) << "no lengths: unchanged";
}

// A tiny in-memory source with one input and one class label.
class FixedSource : public mtl::DatasetSource {
 public:
  FixedSource(std::string input, std::string label, int64_t n, int64_t width) : input_(input), label_(label), n_(n), w_(width) {}
  mtl::DatasetSchema schema() const override {
    mtl::DatasetSchema s;
    s.inputs.push_back({input_, {w_}});
    s.labels.push_back({label_, mtl::LabelKind::kClass, 3, {}});
    return s;
  }
  std::shared_ptr<mtl::Dataset> open(mtl::Split) const override {
    mtl::TensorMap tg{{label_, at::arange(n_, at::kLong) % 3}};
    return std::make_shared<mtl::TensorDataset>(schema(), at::arange(n_ * w_, at::kFloat).view({n_, w_}), tg);
  }

 private:
  std::string input_, label_;
  int64_t n_, w_;
};

TEST(Mixture, RenamesTargetsPerDatasetAndKeepsBatchesInsideOneDataset) {
  auto a = std::make_shared<FixedSource>("x", "label", 5, 2);
  auto b = std::make_shared<FixedSource>("y", "label", 7, 3);
  mtl::MixtureSource mix({"first", "second"}, {a, b});
  mtl::DatasetSchema s = mix.schema();
  ASSERT_NE(s.label("first.label"), nullptr);
  ASSERT_NE(s.label("second.label"), nullptr);
  EXPECT_EQ(s.label("label"), nullptr);
  EXPECT_EQ(s.inputs.size(), 2u);
  auto data = mix.open(mtl::Split::kTrain);
  EXPECT_EQ(data->size(), 12);
  mtl::Batch first = data->batch({0, 4});
  EXPECT_TRUE(first.targets.count("first.label"));
  EXPECT_FALSE(first.targets.count("second.label"));
  EXPECT_TRUE(first.inputs.count("x"));
  mtl::Batch second = data->batch({5, 11});
  EXPECT_EQ(second.inputs.at("y")[1][0].item<float>(), 18.0f);  // example 6 of `second`, 3 wide
  EXPECT_THROW(data->batch({4, 5}), c10::Error);
  auto batches = mtl::sequential_batches(*data, 4);
  // 5 -> 4 + 1, 7 -> 4 + 3: no batch crosses the boundary at 5.
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches[1], (std::vector<int64_t>{4}));
  EXPECT_EQ(batches[2].front(), 5);
}

TEST(Mixture, ConflictingInputShapesAreAnError) {
  auto a = std::make_shared<FixedSource>("x", "label", 5, 2);
  auto b = std::make_shared<FixedSource>("x", "label", 7, 3);
  mtl::MixtureSource mix({"first", "second"}, {a, b});
  try {
    mix.schema();
    FAIL() << "expected an error";
  } catch (const mtl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("datasets.second"), std::string::npos) << e.what();
  }
}

}  // namespace
