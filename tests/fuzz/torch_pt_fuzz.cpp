// PyTorch state dicts saved with torch.save (the zip archive and its pickle program), as fine-tuning imports them.
#include "fuzz_util.h"
#include "mtl/io/torch_state_dict.h"

namespace {

int fuzz_torch_pt(const uint8_t* data, size_t size) {
  const std::string path = mtl_fuzz::input_file(data, size, "model.pt");
  return mtl_fuzz::expect_mtl_errors_only([&] {
    mtl::is_torch_save_archive(path);
    mtl::read_torch_state_dict(path);
  });
}

}  // namespace

MTL_FUZZ_TARGET("torch_pt", fuzz_torch_pt)
