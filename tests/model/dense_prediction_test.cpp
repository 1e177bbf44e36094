// Dense prediction: the segmentation and dense_regression heads over the feature maps of hps, cross_stitch,
// mtan, branch and ltb on dense MultiFashion (shapes, 1 and 2 threads, the evaluation's metrics), hps's maps against
// the backbone's own stages, and one-line errors for models that give no maps.
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "heads/dense.h"
#include "mtl/model/architecture.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "test_util.h"

using namespace std::string_literals;

namespace {

std::vector<std::string> small(mtl_test::TempDir& dir, const std::string& arch, int threads, const std::string& run) {
  return {"model.architecture=" + arch, "data.train_size=120", "data.test_size=40", "data.cache_dir=" + dir.file("c"),
          "trainer.epochs=1", "trainer.max_steps=4", "trainer.batch_size=30", "trainer.eval_interval=4",
          "trainer.threads=" + std::to_string(threads), "baselines=none", "trainer.run_dir=" + dir.file(run)};
}

mtl::Run load(const std::vector<std::string>& sets) {
  return mtl::assemble(mtl::Config::load(mtl_test::source_path("configs/multi_fashion_dense.yaml"), sets));
}

nlohmann::json last_eval(const std::string& run_dir) {
  std::ifstream log(run_dir + "/metrics.jsonl");
  std::string line, eval;
  while (std::getline(log, line))
    if (line.find("\"eval\"") != std::string::npos) eval = line;
  return nlohmann::json::parse(eval);
}

}  // namespace

TEST(DensePrediction, EachArchitectureTrainsTheDenseConfigWithOneAndTwoThreads) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("dense_arch");
  int n = 0;
  for (const std::string arch : {"hps", "cross_stitch", "mtan", "{type: branch, at: 1}", "{type: ltb, fix_epoch: 0}"}) {
    SCOPED_TRACE(arch);
    std::map<std::string, at::Tensor> first;
    for (int threads : {1, 2}) {
      const std::string run = "r" + std::to_string(n++);
      mtl::Run ex = load(small(dir, arch, threads, run));
      // Output shapes of a batch: logits per class and pixel, values per pixel.
      mtl::Batch b = ex.data->open(mtl::Split::kTest)->batch({0, 1, 2});
      mtl::ModelOutput out = ex.model->forward(b.inputs);
      EXPECT_EQ(out.outputs[2].sizes(), (std::vector<int64_t>{3, 4, 36, 36}));
      EXPECT_EQ(out.outputs[3].sizes(), (std::vector<int64_t>{3, 36, 36}));
      EXPECT_EQ(ex.model->head(2)->predict(out.outputs[2]).sizes(), (std::vector<int64_t>{3, 36, 36}));
      EXPECT_EQ(mtl::train(ex, {"", false}).steps, 4);
      nlohmann::json e = last_eval(dir.file(run));
      for (const std::string key : {"segment/miou", "segment/pixel_accuracy", "left_pixels/abs_err",
                                    "left_pixels/rel_err", "left/accuracy"}) {
        ASSERT_TRUE(e.contains(key)) << e.dump();
        EXPECT_TRUE(std::isfinite(e[key].get<double>())) << key;
      }
      EXPECT_GT(e["segment/pixel_accuracy"].get<double>(), 0.0);
      std::map<std::string, at::Tensor> weights;
      for (auto& kv : ex.model->named_parameters()) weights[kv.key()] = kv.value().clone();
      if (threads == 1) {
        first = weights;
        continue;
      }
      // Two threads end where one does (the same shards reduced in another order).
      for (auto& [name, w] : first)
        EXPECT_TRUE(torch::allclose(w, weights[name], 1e-4, 1e-5)) << name;
    }
  }
}

// hps after keep_maps: the maps are the backbone's 4-D stage outputs and the pooled features its forward().
TEST(DensePrediction, HpsMapsAreTheBackbonesStages) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("dense_hps");
  mtl::Run ex = load(small(dir, "hps", 1, "r"));
  ex.model->eval();
  mtl::Batch b = ex.data->open(mtl::Split::kTest)->batch({0, 1, 2, 3});
  mtl::TrunkOutput t = ex.model->architecture().forward(b.inputs);
  const mtl::Backbone& bb = ex.model->backbone();
  ASSERT_EQ(t.maps.size(), 4u);
  ASSERT_EQ(t.maps[0].size(), 2u);  // lenet: conv1 and conv2 stages
  at::Tensor x = bb->stage(0, b.inputs, at::Tensor());
  EXPECT_TRUE(torch::equal(t.maps[0][0], x));
  x = bb->stage(1, b.inputs, x);
  EXPECT_TRUE(torch::equal(t.maps[3][1], x));
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{4, 20, 5, 5}));
  EXPECT_TRUE(torch::allclose(t.shared, bb->forward(b.inputs)));
  EXPECT_EQ(mtl::probe_map_channels(ex.model->architecture(), ex.schema), (std::vector<int64_t>{10, 20}));
}

TEST(DensePrediction, ModelsWithoutMapsAreOneLineErrors) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("dense_bad");
  EXPECT_MTL_ERROR(load(small(dir, "mmoe", 1, "a")), "tasks.segment.type"s, "feature maps"s, "mmoe"s);
  auto mlp = small(dir, "hps", 1, "b");
  mlp.push_back("model.backbone={type: mlp, hidden: [16]}");
  EXPECT_MTL_ERROR(load(mlp), "tasks.segment.type"s, "backbone mlp"s);
  auto rep = small(dir, "hps", 1, "c");
  rep.push_back("weighting={method: mgda, space: representation}");
  EXPECT_MTL_ERROR(load(rep), "weighting"s, "space: representation"s, "task 'segment' reads feature maps"s);
  auto width = small(dir, "hps", 1, "d");
  width.push_back("tasks.segment.head={width: 0}");
  EXPECT_MTL_ERROR(load(width), "--set tasks.segment.head (tasks.segment.head.width)"s, "expected a number >= 1, got 0"s);
}
