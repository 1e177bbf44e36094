// Checkpoints: round trip, atomic replacement, and clear errors for damaged or mismatched files.
#include "mtl/io/checkpoint.h"

#include <torch/torch.h>

#include <filesystem>

#include "mtl/config/config_node.h"
#include "mtl/io/atomic_file.h"
#include "mtl/weighting/weighting.h"
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

// The state held by tests/io/checkpoint_v1.pt, a checkpoint written by the code of commit 6c8639f (before
// checkpoints took a Stateful): Net(3) with these weights after one SGD momentum step on a fixed batch, uw
// weighting with log-variances {0.25, -0.5}, the RNG seeded with 42, position {7, 1, 2, {1.5, 2.5}, {10, 12}}.
void set_fixture_weights(Net& n) {
  torch::NoGradGuard no_grad;
  double k = 1.0;
  for (auto& t : n.parameters()) t.copy_(torch::arange(t.numel()).reshape(t.sizes()) * 0.1 * k++ - 0.3);
  n.bn->running_mean.fill_(0.2);
  n.bn->running_var.fill_(1.5);
}

void fixture_step(Net& n, torch::optim::SGD& opt) {
  opt.zero_grad();
  at::Tensor x = torch::arange(20, torch::kFloat).reshape({5, 4}) * 0.05;
  n.bn->forward(n.fc->forward(x)).pow(2).sum().backward();
  opt.step();
}

std::unique_ptr<mtl::Weighting> make_uw() {
  mtl::Config cfg = mtl::Config::from_string("weighting: {method: uw}\n", "w.yaml");
  mtl::ConfigNode n = cfg.root().child("weighting");
  return mtl::weighting_registry().get("uw")(n, mtl::WeightingContext{{"a", "b"}, {1.0, 1.0}});
}
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

TEST(Checkpoint, SavesAndRestoresAnyStatefulPart) {
  // Checkpoints know only the Stateful interface: a part that is no weighting method round-trips too.
  struct Scale : mtl::Stateful {
    at::Tensor s = torch::tensor({2.0, 3.0});
    void save(torch::serialize::OutputArchive& a) const override { a.write("scale", s); }
    void load(torch::serialize::InputArchive& a) override { a.read("scale", s); }
  };
  mtl_test::TempDir dir("ckpt_stateful");
  Net a(3), b(3);
  Scale saved, restored;
  restored.s = torch::zeros({2});
  mtl::save_checkpoint(dir.file("c.pt"), {&a, nullptr, &saved}, {});
  mtl::load_checkpoint(dir.file("c.pt"), {&b, nullptr, &restored});
  EXPECT_TRUE(torch::equal(restored.s, torch::tensor({2.0, 3.0})));
  // A checkpoint saved without the part cannot fill it: a clear error, not silent defaults.
  mtl::save_checkpoint(dir.file("bare.pt"), {&a, nullptr, nullptr}, {});
  EXPECT_MTL_ERROR(mtl::load_checkpoint(dir.file("bare.pt"), {&b, nullptr, &restored}), dir.file("bare.pt"),
                   "damaged or incompatible checkpoint");
}

TEST(Checkpoint, LoadsAFileWrittenBeforeTheStatefulInterface) {
  // Expected state, rebuilt by hand the way the fixture was made.
  Net a(3);
  set_fixture_weights(a);
  torch::optim::SGD opt_a(a.parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  fixture_step(a, opt_a);

  torch::manual_seed(99);
  Net b(3);
  torch::optim::SGD opt_b(b.parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  auto uw = make_uw();
  mtl::TrainPosition got =
      mtl::load_checkpoint(mtl_test::source_path("tests/io/checkpoint_v1.pt"), {&b, &opt_b, uw.get()});
  EXPECT_EQ(got.step, 7);
  EXPECT_EQ(got.epoch, 1);
  EXPECT_EQ(got.batch_in_epoch, 2);
  EXPECT_EQ(got.epoch_loss_sum, (std::vector<double>{1.5, 2.5}));
  EXPECT_EQ(got.epoch_examples, (std::vector<double>{10, 12}));
  // The expected values are recomputed here; the intra-op thread count earlier tests left may round them
  // differently from the run that wrote the fixture (1 ulp), hence allclose rather than bitwise equality.
  for (const auto& kv : a.named_parameters())
    EXPECT_TRUE(torch::allclose(kv.value(), b.named_parameters()[kv.key()], 1e-6, 1e-7)) << kv.key();
  for (const auto& kv : a.named_buffers())
    EXPECT_TRUE(torch::allclose(kv.value().to(torch::kDouble), b.named_buffers()[kv.key()].to(torch::kDouble), 1e-6, 1e-7))
        << kv.key();
  EXPECT_EQ(b.bn->num_batches_tracked.item<int64_t>(), 1);
  ASSERT_EQ(uw->parameters().size(), 1u);
  EXPECT_TRUE(torch::equal(uw->parameters()[0].detach(), torch::tensor({0.25, -0.5}, torch::kDouble)));
  at::Tensor after_load = torch::rand({3});
  torch::manual_seed(42);
  EXPECT_TRUE(torch::equal(after_load, torch::rand({3}))) << "RNG state not restored";
  // The momentum buffers came back: one more identical step keeps the models identical.
  fixture_step(a, opt_a);
  fixture_step(b, opt_b);
  EXPECT_TRUE(torch::equal(a.fc->weight, b.fc->weight));
  EXPECT_FALSE(torch::equal(a.fc->weight, torch::zeros_like(a.fc->weight)));
}
