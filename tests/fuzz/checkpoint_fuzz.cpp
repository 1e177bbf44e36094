// mtl checkpoints: the zip archive, its format tag, the model tensors (checked against a small model's
// names, shapes and dtypes), the position, the optimizer and the thread plan.
#include <torch/torch.h>

#include "fuzz_util.h"
#include "mtl/io/checkpoint.h"

namespace {

int fuzz_checkpoint(const uint8_t* data, size_t size) {
  const std::string path = mtl_fuzz::input_file(data, size, "checkpoint.pt");
  return mtl_fuzz::expect_mtl_errors_only([&] {
    mtl_fuzz::expect_mtl_errors_only([&] { mtl::read_checkpoint_model_tensors(path); });
    torch::nn::Sequential model(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2));
    torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    mtl::load_checkpoint(path, mtl::CheckpointRefs{model.get(), &optimizer, nullptr}, /*restore_rng=*/false);
  });
}

}  // namespace

MTL_FUZZ_TARGET("checkpoint", fuzz_checkpoint)

#ifdef MTL_FUZZ_TARGET_MAIN
// `MTL_FUZZ_WRITE_SEED=path fuzz_checkpoint`: writes a valid checkpoint of the model above to `path` and exits
// (tests/fuzz/make_corpus.py puts it in the seed corpus).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* out = std::getenv("MTL_FUZZ_WRITE_SEED")) {
    torch::manual_seed(0);
    torch::nn::Sequential model(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2));
    torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    model->forward(torch::randn({4, 3})).sum().backward();
    optimizer.step();
    mtl::TrainPosition pos;
    pos.step = 3;
    pos.epoch_loss_sum = {1.5};
    pos.epoch_examples = {4};
    pos.log_bytes = 120;
    mtl::save_checkpoint(out, mtl::CheckpointRefs{model.get(), &optimizer, nullptr}, pos);
    std::exit(0);
  }
  return 0;
}
#endif
