// .pt state dicts against PyTorch itself: files torch.save wrote (tests/io/torch_pt_reference.py) read back to
// the bit, compared with an independent safetensors copy of the same tensors; files mtl writes load in
// torch.load as an OrderedDict of equal tensors; anything that is not a state dict, or is damaged, is refused
// with a one-line error, and nothing in a pickle ever runs.
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "mtl/core/error.h"
#include "mtl/io/safetensors.h"
#include "mtl/io/torch_state_dict.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const char* kPython = "/usr/bin/python3";

std::string script() { return std::string(kPython) + " " + mtl_test::source_path("tests/io/torch_pt_reference.py"); }

// Empty when PyTorch's Python side can run, else why not.
std::string torch_unavailable() {
  if (!fs::exists(kPython)) return std::string(kPython) + " is missing (install python3-torch)";
  mtl_test::ShellRun r = mtl_test::run_shell(std::string(kPython) + " -c 'import torch, numpy'");
  if (r.code != 0) return std::string(kPython) + " cannot import torch and numpy (install python3-torch): " + r.out;
  return "";
}

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.nbytes() == cb.nbytes() && (ca.nbytes() == 0 || std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0);
}

// The same names, dtypes, shapes and bytes, in the same order.
void expect_same(const mtl::NamedTensors& got, const mtl::NamedTensors& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].first);
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_EQ(got[i].second.scalar_type(), want[i].second.scalar_type());
    EXPECT_EQ(got[i].second.sizes(), want[i].second.sizes());
    EXPECT_TRUE(got[i].second.is_contiguous());
    EXPECT_TRUE(same_bytes(got[i].second, want[i].second));
  }
}

std::string error_of(const std::string& path, const std::string& key = "") {
  try {
    mtl::read_torch_state_dict(path, key);
  } catch (const mtl::Error& e) {
    EXPECT_EQ(e.where(), path);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    return e.message();
  }
  ADD_FAILURE() << path << " was read without an error";
  return "";
}

class TorchStateDict : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_ = torch_unavailable();
    if (!skip_.empty()) return;
    dir_ = new mtl_test::TempDir("torch_state_dict");
    mtl_test::ShellRun r = mtl_test::run_shell(script() + " make " + dir_->path());
    if (r.code != 0) skip_ = "the reference script failed: " + r.out;  // reported by every test below
    else first_tensor_ = r.out.substr(0, r.out.find('\n'));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty() && skip_.rfind("the reference script", 0) == 0) FAIL() << skip_;
    if (!skip_.empty()) GTEST_SKIP() << skip_;
  }
  static std::string file(const std::string& name) { return dir_->file(name); }

  static inline std::string skip_;
  static inline std::string first_tensor_;
  static inline mtl_test::TempDir* dir_ = nullptr;
};

TEST_F(TorchStateDict, ReadsWhatTorchSaveWrote) {
  // An OrderedDict state_dict() with every dtype, strided views sharing one storage, a scalar and an empty tensor.
  mtl::NamedTensors want = mtl::read_safetensors(file("state_dict.safetensors")).tensors;
  expect_same(mtl::read_torch_state_dict(file("state_dict.pt")), want);
  expect_same(mtl::read_torch_state_dict(file("protocol4.pt")), want);  // torch.save(..., pickle_protocol=4)
  // keep_vars=True: nn.Parameter values (torch._utils._rebuild_parameter)
  expect_same(mtl::read_torch_state_dict(file("parameters.pt")),
              mtl::read_safetensors(file("parameters.safetensors")).tensors);
}

TEST_F(TorchStateDict, SelectsTheStateDictOfACheckpointByKey) {
  mtl::NamedTensors want = mtl::read_safetensors(file("checkpoint_model.safetensors")).tensors;
  expect_same(mtl::read_torch_state_dict(file("checkpoint.pt"), "model"), want);
  expect_same(mtl::read_torch_state_dict(file("nested.pt"), "trainer.state.model"), want);

  // Without a key the error says which key holds the weights.
  std::string e = error_of(file("checkpoint.pt"));
  EXPECT_NE(e.find("checkpoint dict"), std::string::npos) << e;
  EXPECT_NE(e.find("key: model"), std::string::npos) << e;
  e = error_of(file("checkpoint.pt"), "modle");
  EXPECT_NE(e.find("no entry 'modle'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'model'"), std::string::npos) << e;
  EXPECT_NE(e.find("epoch, model, optimizer, args"), std::string::npos) << e;
  e = error_of(file("checkpoint.pt"), "epoch");
  EXPECT_NE(e.find("holds an int, not a state dict"), std::string::npos) << e;
  e = error_of(file("nested.pt"), "trainer.state");
  EXPECT_NE(e.find("key: trainer.state.model"), std::string::npos) << e;
  e = error_of(file("checkpoint.pt"), "epoch.x");
  EXPECT_NE(e.find("'epoch' holds an int, not a dict"), std::string::npos) << e;
  e = error_of(file("checkpoint.pt"), "args");
  EXPECT_NE(e.find("entry 'lr' is a float, not a tensor"), std::string::npos) << e;
}

TEST_F(TorchStateDict, RefusesWhatIsNotAStateDictAndRunsNoPickledCode) {
  std::string e = error_of(file("whole_model.pt"));
  EXPECT_NE(e.find("Net"), std::string::npos) << e;  // names the pickled class
  EXPECT_NE(e.find("save model.state_dict()"), std::string::npos) << e;
  e = error_of(file("evil.pt"));  // {"w": tensor, "x": an object whose unpickling runs `touch EXECUTED`}
  EXPECT_NE(e.find("entry 'x'"), std::string::npos) << e;
  EXPECT_NE(e.find("system"), std::string::npos) << e;
  e = error_of(file("evil_root.pt"));
  EXPECT_NE(e.find("not a state dict"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(file("EXECUTED")));  // the pickled os.system call never ran
  e = error_of(file("torchscript.pt"));
  EXPECT_NE(e.find("TorchScript"), std::string::npos) << e;
  e = error_of(file("legacy.pt"));
  EXPECT_NE(e.find("not a zip archive"), std::string::npos) << e;
  e = error_of(file("empty.pt"));
  EXPECT_NE(e.find("empty"), std::string::npos) << e;
}

TEST_F(TorchStateDict, DamagedArchivesGiveOneLineErrors) {
  std::string e = error_of(file("truncated.pt"));
  EXPECT_NE(e.find("truncated or damaged"), std::string::npos) << e;
  e = error_of(file("short_storage.pt"));  // data/0 cut to 4 bytes
  EXPECT_NE(e.find("tensor '" + first_tensor_ + "'"), std::string::npos) << e;
  EXPECT_NE(e.find("has 4 bytes"), std::string::npos) << e;
  e = error_of(file("no_such.pt"));
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
  // Every prefix of a good file fails cleanly (never crashes or hangs).
  const std::string good = file("state_dict.pt");
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string cut = file("cut.pt");
  for (size_t n = 0; n < bytes.size(); n += 97) {
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(n));
    EXPECT_THROW(mtl::read_torch_state_dict(cut), mtl::Error) << n;
  }
}

TEST_F(TorchStateDict, TorchLoadReadsWhatMtlWrote) {
  torch::manual_seed(0);
  at::Tensor base = torch::randn({4, 6});
  mtl::NamedTensors tensors = {
      {"backbone.conv1.weight", torch::randn({8, 3, 3, 3})},
      {"backbone.bn1.num_batches_tracked", torch::tensor(int64_t{7})},
      {"transposed", base.t()},  // non-contiguous: written contiguous with the same values
      {"f64", torch::randn({3}, torch::kFloat64)},
      {"f16", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 3}).to(torch::kBFloat16)},
      {"i32", torch::arange(-4, 4, torch::kInt32)},
      {"i16", torch::tensor({-32768, 32767}, torch::kInt32).to(torch::kInt16)},
      {"i8", torch::tensor({-128, 127}, torch::kInt32).to(torch::kInt8)},
      {"u8", torch::tensor({0, 255}, torch::kInt32).to(torch::kUInt8)},
      {"mask", torch::tensor({1, 0, 1}, torch::kInt32).to(torch::kBool)},
      {"empty", torch::zeros({0, 2})},
      {"big", torch::tensor({int64_t{1} << 40, -(int64_t{1} << 40), int64_t{-300}, int64_t{70000}})},
  };
  const std::string pt = file("mtl.pt"), st = file("mtl.safetensors");
  mtl::write_torch_state_dict(pt, tensors);
  mtl::write_safetensors(st, tensors);
  mtl_test::ShellRun r = mtl_test::run_shell(script() + " verify " + pt + " " + st);
  EXPECT_EQ(r.code, 0) << r.out;
  expect_same(mtl::read_torch_state_dict(pt), mtl::read_safetensors(st).tensors);  // and mtl reads it back

  // The check is not vacuous: a changed value fails it.
  tensors[3].second = tensors[3].second.clone();
  tensors[3].second[0] = 42.0;
  mtl::write_torch_state_dict(pt, tensors);
  mtl_test::ShellRun bad = mtl_test::run_shell(script() + " verify " + pt + " " + st);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("f64: values differ"), std::string::npos) << bad.out;
}

TEST(TorchStateDictWriter, RefusesDtypesTorchSaveFilesOfMtlDoNotHold) {
  mtl_test::TempDir dir("torch_state_dict_writer");
  try {
    mtl::write_torch_state_dict(dir.file("c.pt"), {{"z", torch::zeros({2}, torch::kComplexFloat)}});
    ADD_FAILURE() << "no error";
  } catch (const mtl::Error& e) {
    EXPECT_NE(e.message().find("tensor 'z'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.file("c.pt")));
}

}  // namespace
