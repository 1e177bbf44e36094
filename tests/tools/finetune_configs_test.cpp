// The fine-tuning worked example's configs on real Fashion-MNIST data, scaled down: pretrain LeNet on plain
// Fashion-MNIST (items on a 36x36 canvas), then train MultiFashion from that trunk, frozen and unfrozen.
#include <torch/torch.h>

#include "mtl/run/trainer.h"
#include "mtl/io/checkpoint.h"
#include "test_util.h"

namespace {

mtl::Run load(const std::string& config, const std::vector<std::string>& sets) {
  return mtl::assemble(mtl::Config::load(mtl_test::source_path(config), sets));
}

double mean_accuracy(const mtl::EvalResult& e) {
  return (e.value("left", "accuracy") + e.value("right", "accuracy")) / 2;
}

}  // namespace

TEST(FinetuneConfigs, PretrainThenFineTuneFrozenAndUnfrozen) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("finetune_configs");
  mtl::Run pre = load("configs/fashion_pretrain.yaml",
                             {"data.train_size=6000", "data.test_size=1000", "trainer.epochs=1", "trainer.threads=2", "trainer.batch_size=32",
                              "trainer.run_dir=" + dir.file("pretrain")});
  EXPECT_EQ(pre.schema.inputs.at(0).shape, (std::vector<int64_t>{1, 36, 36}));
  mtl::TrainSummary ps = mtl::train(pre, {"", false});
  std::cout << "pretraining, 6000 examples x 1 epoch (batch 32): accuracy " << ps.final_eval.value("class", "accuracy") << "\n";
  EXPECT_GT(ps.final_eval.value("class", "accuracy"), 0.5);  // chance 0.1
  mtl::NamedTensors trunk = mtl::read_checkpoint_model_tensors(dir.file("pretrain/checkpoint.pt"));

  std::vector<std::string> small{"data.train_size=2000", "data.test_size=1000", "data.cache_dir=" + dir.file("cache"),
                                 "trainer.threads=2", "trainer.batch_size=32", "optimizer.lr=0.02",
                                 "model.init.path=" + dir.file("pretrain")};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), small.begin(), small.end());
    return extra;
  };
  mtl::Run frozen = load("configs/multi_fashion_finetune.yaml", with({"trainer.run_dir=" + dir.file("frozen")}));
  mtl::TrainSummary fs = mtl::train(frozen, {"", false});
  mtl::Run unfrozen = load("configs/multi_fashion_finetune.yaml",
                                  with({"trainer.run_dir=" + dir.file("unfrozen"), "freeze.params=[]"}));
  mtl::TrainSummary us = mtl::train(unfrozen, {"", false});
  std::cout << "MultiFashion 2000 x 1 epoch (batch 32) from the trunk: frozen " << mean_accuracy(fs.final_eval) << ", unfrozen "
            << mean_accuracy(us.final_eval) << "\n";
  // The frozen trunk is exactly the pretrained one; the unfrozen one moved.
  size_t compared = 0;
  for (const auto& [name, t] : trunk) {
    if (name.rfind("backbone.", 0) != 0) continue;
    ++compared;
    EXPECT_TRUE(torch::equal(frozen.model->named_parameters()[name], t)) << name;
    EXPECT_FALSE(torch::equal(unfrozen.model->named_parameters()[name], t)) << name;
  }
  EXPECT_EQ(compared, 6u);
  EXPECT_GT(mean_accuracy(fs.final_eval), 0.2);  // chance 0.1: the pretrained features carry over
  EXPECT_GT(mean_accuracy(us.final_eval), 0.2);
}
