// The fuzz targets (tests/fuzz/*_fuzz.cpp) compiled into the test suite: each runs on its seed corpus
// (tests/fuzz/corpus/<target>/) and on every input a fuzzer found that crashed, hung or threw something other
// than an mtl::Error (tests/fuzz/regressions/<target>/, one file per finding, named after what it broke). A
// finding fails here until it is fixed: a crash ends the test binary, another exception type fails the test.
#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz_util.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

std::vector<std::string> inputs(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(FuzzRegressions, EveryTargetRunsItsCorpusAndFindingsWithOnlyMtlErrors) {
  const std::vector<std::string> expected = {"checkpoint", "config", "conll", "csv", "idx",
                                             "jsonl", "safetensors", "torch_pt", "vocab"};
  std::vector<std::string> names;
  for (const auto& [name, f] : mtl_fuzz::targets()) names.push_back(name);
  EXPECT_EQ(names, expected);
  size_t runs = 0, findings = 0;
  for (const auto& [name, target] : mtl_fuzz::targets()) {
    std::vector<std::string> files = inputs(mtl_test::source_path("tests/fuzz/corpus/" + name));
    EXPECT_FALSE(files.empty()) << name << ": no seed corpus (tests/fuzz/make_corpus.py)";
    const std::vector<std::string> found = inputs(mtl_test::source_path("tests/fuzz/regressions/" + name));
    findings += found.size();
    files.insert(files.end(), found.begin(), found.end());
    for (const std::string& file : files) {
      std::ifstream in(file, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      try {
        target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      } catch (const std::exception& e) {
        ADD_FAILURE() << file << ": " << e.what();
      } catch (...) {
        ADD_FAILURE() << file << ": an exception that is not a std::exception";
      }
      ++runs;
    }
  }
  RecordProperty("inputs", static_cast<int>(runs));
  RecordProperty("findings", static_cast<int>(findings));
}
