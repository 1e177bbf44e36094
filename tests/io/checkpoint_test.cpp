// Checkpoints: round trip, atomic replacement, and clear errors for damaged or mismatched files.
#include "mtl/io/checkpoint.h"

#include <torch/torch.h>

#include <filesystem>

#include "mtl/io/atomic_file.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {
struct Net : torch::nn::Module {
  explicit Net(int64_t width) {
    fc = register_module("fc", torch::nn::Linear(4, width));
    bn = register_module("bn", torch::nn::BatchNorm1d(width));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};
}  // namespace

TEST(Checkpoint, RoundTripRestoresModelOptimizerRngAndPosition) {
  mtl_test::TempDir dir("ckpt");
  torch::manual_seed(1);
  Net a(3);
  torch::optim::SGD opt(a.parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  auto loss = a.bn->forward(a.fc->forward(torch::randn({5, 4}))).pow(2).sum();
  loss.backward();
  opt.step();
  mtl::TrainPosition pos{7, 1, 2, {1.5, 2.5}, {10, 10}};
  mtl::save_checkpoint(dir.file("c.pt"), {&a, &opt, nullptr}, pos);
  at::Tensor next_random = torch::rand({3});

  torch::manual_seed(99);
  Net b(3);
  torch::optim::SGD opt_b(b.parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  mtl::TrainPosition got = mtl::load_checkpoint(dir.file("c.pt"), {&b, &opt_b, nullptr});
  EXPECT_EQ(got.step, 7);
  EXPECT_EQ(got.epoch, 1);
  EXPECT_EQ(got.batch_in_epoch, 2);
  EXPECT_EQ(got.epoch_loss_sum, (std::vector<double>{1.5, 2.5}));
  for (const auto& kv : a.named_parameters()) EXPECT_TRUE(torch::equal(kv.value(), b.named_parameters()[kv.key()]));
  for (const auto& kv : a.named_buffers()) EXPECT_TRUE(torch::equal(kv.value(), b.named_buffers()[kv.key()]));
  EXPECT_TRUE(torch::equal(torch::rand({3}), next_random)) << "RNG state not restored";
  // The momentum buffers came back: one more identical step keeps the models identical.
  for (Net* n : {&a, &b}) n->zero_grad();
  torch::manual_seed(5);
  a.bn->forward(a.fc->forward(torch::randn({5, 4}))).pow(2).sum().backward();
  torch::manual_seed(5);
  b.bn->forward(b.fc->forward(torch::randn({5, 4}))).pow(2).sum().backward();
  opt.step();
  opt_b.step();
  EXPECT_TRUE(torch::equal(a.fc->weight, b.fc->weight));
  // No temporary files are left behind.
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename(), "c.pt");
}

TEST(Checkpoint, ShapeMismatchNamesTheTensor) {
  mtl_test::TempDir dir("ckpt_shape");
  Net a(3), b(4);
  mtl::save_checkpoint(dir.file("c.pt"), {&a, nullptr, nullptr}, {});
  EXPECT_MTL_ERROR(mtl::load_checkpoint(dir.file("c.pt"), {&b, nullptr, nullptr}), dir.file("c.pt"), "fc.weight",
                   "[3, 4]", "[4, 4]");
}

TEST(Checkpoint, DamagedOrForeignFilesAreRejected) {
  mtl_test::TempDir dir("ckpt_bad");
  Net a(3);
  mtl_test::write_file(dir.file("garbage.pt"), "this is not a checkpoint");
  EXPECT_MTL_ERROR(mtl::load_checkpoint(dir.file("garbage.pt"), {&a, nullptr, nullptr}), dir.file("garbage.pt"),
                   "not a readable mtl checkpoint");
  mtl::save_checkpoint(dir.file("good.pt"), {&a, nullptr, nullptr}, {});
  std::string bytes = mtl_test::read_file(dir.file("good.pt"));
  mtl_test::write_file(dir.file("truncated.pt"), bytes.substr(0, bytes.size() / 2));
  EXPECT_MTL_ERROR(mtl::load_checkpoint(dir.file("truncated.pt"), {&a, nullptr, nullptr}), dir.file("truncated.pt"));
  EXPECT_MTL_ERROR(mtl::load_checkpoint(dir.file("missing.pt"), {&a, nullptr, nullptr}), dir.file("missing.pt"),
                   "does not exist");
}

TEST(Checkpoint, FailedWriteKeepsThePreviousFile) {
  mtl_test::TempDir dir("ckpt_atomic");
  mtl::write_file_atomic(dir.file("f.txt"), "old");
  EXPECT_THROW(mtl::write_atomic(dir.file("f.txt"), [](const std::string& tmp) {
                 mtl_test::write_file(tmp, "partial");
                 throw std::runtime_error("disk full");
               }),
               std::runtime_error);
  EXPECT_EQ(mtl_test::read_file(dir.file("f.txt")), "old");
  size_t files = 0;
  for (auto& e : fs::directory_iterator(dir.path())) (void)e, ++files;
  EXPECT_EQ(files, 1u);
}
