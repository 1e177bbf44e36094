// safetensors interoperability: files written by an independent implementation (tools/safetensors_numpy.py,
// numpy + the standard library) read back exactly, and files mtl writes pass that implementation's check.
// The reference values are built here the same way the script builds them; keep the two in step.
#include <sys/wait.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "mtl/io/safetensors.h"
#include "test_util.h"

namespace {

const char* kPython = "/usr/bin/python3";

using ScriptRun = mtl_test::ShellRun;
ScriptRun run(const std::string& cmd) { return mtl_test::run_shell(cmd); }

// Empty when the script can run, else why not.
std::string python_unavailable() {
  if (!std::filesystem::exists(kPython)) return std::string(kPython) + " is missing (install python3-numpy)";
  ScriptRun r = run(std::string(kPython) + " -c 'import numpy'");
  if (r.code != 0) return std::string(kPython) + " cannot import numpy (install python3-numpy): " + r.out;
  return "";
}

std::string script() { return std::string(kPython) + " " + mtl_test::source_path("tools/safetensors_numpy.py"); }

at::Tensor doubles(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }

// The script's reference(), in its order.
mtl::NamedTensors reference() {
  auto r = torch::arange(12, torch::kFloat64);
  std::vector<double> thirds;
  for (int i = 0; i < 5; ++i) thirds.push_back((i + 1) / 3.0);
  std::vector<bool> mask;
  for (int i = 0; i < 5; ++i) mask.push_back(i % 3 != 1);
  at::Tensor mask_t = torch::empty({5}, torch::kBool);
  for (int i = 0; i < 5; ++i) mask_t[i] = static_cast<bool>(mask[i]);
  return {
      {"f32.matrix", (r * 0.5 - 2.25).to(torch::kFloat32).reshape({3, 4})},
      {"f64.thirds", doubles(thirds)},
      {"f16.steps", (torch::arange(6, torch::kFloat64) * 0.25 - 0.5).to(torch::kHalf).reshape({2, 3})},
      {"bf16.halves", (torch::arange(6, torch::kFloat32) - 2.5).to(torch::kBFloat16).reshape({3, 2})},
      {"i64.big", torch::tensor({-(int64_t{1} << 62), int64_t{-1}, int64_t{0}, (int64_t{1} << 62) + 7}, torch::kInt64)},
      {"i32.cube", (torch::arange(8, torch::kInt64) * 1000 - 3000).to(torch::kInt32).reshape({2, 2, 2})},
      {"i16.extremes", torch::tensor({-32768, 0, 32767}, torch::kInt32).to(torch::kInt16)},
      {"i8.extremes", torch::tensor({-128, -1, 0, 127}, torch::kInt32).to(torch::kInt8)},
      {"u8.bytes", torch::tensor({0, 1, 128, 255}, torch::kInt32).to(torch::kUInt8).reshape({2, 2})},
      {"bool.mask", mask_t},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 3}, torch::kFloat32)},
  };
}

const std::vector<std::pair<std::string, std::string>> kMetadata = {
    {"producer", "safetensors_numpy.py"}, {"unicode", "na\xc3\xaf" "ve \xe2\x9c\x93"}, {"empty", ""}};

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.nbytes() == cb.nbytes() && (ca.nbytes() == 0 || std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0);
}

}  // namespace

TEST(SafetensorsInterop, ReferenceValuesAreTheScriptsOnes) {
  // Guards the C++ side of the shared table: bf16 bits are the float32's upper half, as the script computes.
  auto ref = reference();
  at::Tensor bf = ref[3].second;
  at::Tensor f = (torch::arange(6, torch::kFloat32) - 2.5).reshape({3, 2});
  EXPECT_TRUE(torch::equal(bf.view(torch::kInt16), f.view(torch::kInt32).bitwise_right_shift(16).to(torch::kInt16)));
  EXPECT_EQ(ref[10].second.dim(), 0);
}

TEST(SafetensorsInterop, ReadsWhatNumpyWrote) {
  std::string why = python_unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
  mtl_test::TempDir dir("safetensors_interop");
  const std::string path = dir.file("numpy.safetensors");
  ScriptRun w = run(script() + " write " + path);
  ASSERT_EQ(w.code, 0) << w.out;

  mtl::SafetensorsContents got = mtl::read_safetensors(path);
  mtl::NamedTensors want = reference();
  ASSERT_EQ(got.tensors.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].first);
    const at::Tensor& t = got.tensors[i].second;
    EXPECT_EQ(got.tensors[i].first, want[i].first);  // the script writes the data in this order
    EXPECT_EQ(t.scalar_type(), want[i].second.scalar_type());
    EXPECT_EQ(t.sizes(), want[i].second.sizes());
    EXPECT_TRUE(torch::equal(t, want[i].second)) << t << "\nvs\n" << want[i].second;
    EXPECT_TRUE(same_bytes(t, want[i].second));
  }
  std::map<std::string, std::string> meta(got.metadata.begin(), got.metadata.end());
  EXPECT_EQ(meta, (std::map<std::string, std::string>(kMetadata.begin(), kMetadata.end())));
}

TEST(SafetensorsInterop, NumpyReadsWhatMtlWrote) {
  std::string why = python_unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
  mtl_test::TempDir dir("safetensors_interop");
  mtl::NamedTensors tensors = reference();
  tensors[0].second = tensors[0].second.t().contiguous().t();  // same values, non-contiguous
  ASSERT_FALSE(tensors[0].second.is_contiguous());
  std::reverse(tensors.begin(), tensors.end());  // the order is the writer's choice
  const std::string path = dir.file("mtl.safetensors");
  mtl::write_safetensors(path, tensors, kMetadata);
  ScriptRun c = run(script() + " check " + path);
  EXPECT_EQ(c.code, 0) << c.out;

  // The check is not vacuous: one changed value fails it.
  tensors[5].second = tensors[5].second.clone();
  tensors[5].second.view(-1)[0] = 1;
  mtl::write_safetensors(path, tensors, kMetadata);
  ScriptRun bad = run(script() + " check " + path);
  EXPECT_NE(bad.code, 0) << bad.out;
  EXPECT_NE(bad.out.find(tensors[5].first), std::string::npos) << bad.out;
}
