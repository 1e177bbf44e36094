// safetensors: bit-exact round trips of every supported dtype, metadata, the written layout, and one test per
// kind of malformed file (built byte by byte), each checking that the error names the file and the tensor.
#include "mtl/io/safetensors.h"

#include <torch/torch.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "mtl/core/error.h"
#include "test_util.h"

namespace {

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file from a header (padded to 8 bytes, as writers do) and raw data bytes.
std::string st_bytes(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

struct Broken {
  mtl_test::TempDir dir{"safetensors_bad"};
  std::string path = dir.file("bad.safetensors");
  const std::string& make(const std::string& bytes) {
    mtl_test::write_file(path, bytes);
    return path;
  }
  const std::string& make(const std::string& header, const std::string& data) { return make(st_bytes(header, data)); }
};

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.scalar_type() == cb.scalar_type() && ca.sizes() == cb.sizes() && ca.nbytes() == cb.nbytes() &&
         (ca.nbytes() == 0 || std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0);
}

// Values worth round-tripping for `type`: extremes, signs, fractions, an infinity.
at::Tensor sample(at::ScalarType type, at::IntArrayRef shape) {
  torch::manual_seed(3);
  at::Tensor t;
  if (type == at::kBool) {
    t = torch::rand(shape) > 0.5;
  } else if (at::isFloatingType(type)) {
    t = (torch::randn(shape) * 100).to(type);
    if (t.numel() > 1) t.view(-1)[1] = std::numeric_limits<float>::infinity();
  } else {
    t = torch::randint(-120, 120, shape).to(type);
    if (t.numel() > 0 && type != at::kByte) t.view(-1)[0] = -100;
  }
  return t;
}

const at::ScalarType kAllTypes[] = {at::kBool,  at::kByte,  at::kChar,     at::kShort, at::kInt,
                                    at::kLong,  at::kHalf,  at::kBFloat16, at::kFloat, at::kDouble};

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeBitExact) {
  mtl_test::TempDir dir("safetensors");
  mtl::NamedTensors in;
  for (at::ScalarType type : kAllTypes) {
    std::string n = c10::toString(type);
    in.emplace_back(n + ".matrix", sample(type, {3, 4}));
    in.emplace_back(n + ".scalar", sample(type, {}));
    in.emplace_back(n + ".empty", sample(type, {0, 5}));
    in.emplace_back(n + ".transposed", sample(type, {4, 3}).t());  // non-contiguous input
    in.emplace_back(n + ".cube", sample(type, {2, 1, 3}));
  }
  ASSERT_FALSE(in[3].second.is_contiguous());
  const std::string path = dir.file("all.safetensors");
  mtl::write_safetensors(path, in);
  mtl::SafetensorsContents out = mtl::read_safetensors(path);
  ASSERT_EQ(out.tensors.size(), in.size());
  EXPECT_TRUE(out.metadata.empty());
  for (size_t i = 0; i < in.size(); ++i) {
    SCOPED_TRACE(in[i].first);
    EXPECT_EQ(out.tensors[i].first, in[i].first);  // written in the given order = the order of offsets
    const at::Tensor& got = out.tensors[i].second;
    EXPECT_EQ(got.scalar_type(), in[i].second.scalar_type());
    EXPECT_EQ(got.sizes(), in[i].second.sizes());
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_TRUE(torch::equal(got, in[i].second));
    EXPECT_TRUE(same_bytes(got, in[i].second));
  }
  EXPECT_EQ(out.tensors[1].second.dim(), 0);
  EXPECT_EQ(out.tensors[2].second.numel(), 0);
}

TEST(Safetensors, ReadTensorsOwnTheirMemory) {
  mtl_test::TempDir dir("safetensors");
  mtl::write_safetensors(dir.file("a.safetensors"), {{"w", torch::ones({2, 2})}});
  at::Tensor w = mtl::read_safetensors(dir.file("a.safetensors")).tensors.at(0).second;
  std::filesystem::remove(dir.file("a.safetensors"));
  w.add_(1);  // writable, and still valid after the file is gone
  EXPECT_TRUE(torch::equal(w, torch::full({2, 2}, 2.0)));
}

TEST(Safetensors, MetadataRoundTripsInOrder) {
  mtl_test::TempDir dir("safetensors");
  std::vector<std::pair<std::string, std::string>> meta = {
      {"format", "mtl"}, {"tasks", "left,right"}, {"empty", ""}, {"unicode", "na\xc3\xafve \xe2\x9c\x93"}};
  mtl::write_safetensors(dir.file("m.safetensors"), {{"x", torch::arange(3)}}, meta);
  auto got = mtl::read_safetensors(dir.file("m.safetensors"));
  EXPECT_EQ(got.metadata, meta);
  // No tensors at all is a valid file too.
  mtl::write_safetensors(dir.file("none.safetensors"), {}, meta);
  auto none = mtl::read_safetensors(dir.file("none.safetensors"));
  EXPECT_TRUE(none.tensors.empty());
  EXPECT_EQ(none.metadata, meta);
}

TEST(Safetensors, WrittenLayoutFollowsTheSpec) {
  mtl_test::TempDir dir("safetensors");
  mtl::write_safetensors(dir.file("l.safetensors"),
                         {{"b", torch::zeros({3}, torch::kHalf)}, {"a", torch::ones({2, 2}, torch::kFloat64)}},
                         {{"k", "v"}});
  std::string bytes = mtl_test::read_file(dir.file("l.safetensors"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);  // the data section starts 8-byte aligned
  ASSERT_EQ(bytes.size(), 8 + n + 3 * 2 + 4 * 8);
  std::string header = bytes.substr(8, n);
  EXPECT_EQ(header[0], '{');
  EXPECT_EQ(header.find_last_not_of(' '), header.find_last_of('}'));  // padded with spaces only
  auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["__metadata__"], nlohmann::json({{"k", "v"}}));
  EXPECT_EQ(j["b"], nlohmann::json({{"dtype", "F16"}, {"shape", {3}}, {"data_offsets", {0, 6}}}));
  EXPECT_EQ(j["a"], nlohmann::json({{"dtype", "F64"}, {"shape", {2, 2}}, {"data_offsets", {6, 38}}}));
}

TEST(Safetensors, ReadsInOrderOfOffsetsNotHeaderOrder) {
  Broken f;  // a valid file, written by hand
  std::string data(4 + 2 + 1, '\0');
  float v = 1.5f;
  std::memcpy(&data[0], &v, 4);
  data[4] = 7;  // I16 7 (little-endian)
  data[6] = 1;  // BOOL true
  auto c = mtl::read_safetensors(f.make(
      R"({"z":{"dtype":"BOOL","shape":[],"data_offsets":[6,7]},"y":{"dtype":"I16","shape":[1],"data_offsets":[4,6]},)"
      R"("x":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"__metadata__":{"a":"b"}})",
      data));
  ASSERT_EQ(c.tensors.size(), 3u);
  EXPECT_EQ(c.tensors[0].first, "x");
  EXPECT_EQ(c.tensors[1].first, "y");
  EXPECT_EQ(c.tensors[2].first, "z");
  EXPECT_EQ(c.tensors[0].second.item<float>(), 1.5f);
  EXPECT_EQ(c.tensors[1].second.scalar_type(), at::kShort);
  EXPECT_EQ(c.tensors[1].second.item<int16_t>(), 7);
  EXPECT_EQ(c.tensors[2].second.dim(), 0);
  EXPECT_TRUE(c.tensors[2].second.item<bool>());
  // Zero-size tensors may sit anywhere in the sequence, even at the very end.
  auto e = mtl::read_safetensors(f.make(
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]}})",
      std::string(4, '\0')));
  EXPECT_EQ(e.tensors.at(1).second.sizes(), (std::vector<int64_t>{0, 3}));
}

// ------------------------------------------------------------------------------------------- rejections

TEST(Safetensors, RejectsFileShorterThan8Bytes) {
  Broken f;
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(std::string("\x02\0\0", 3))), f.path, "too short");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make("")), f.path, "too short");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.dir.file("missing.safetensors")), "missing.safetensors", "cannot open");
}

TEST(Safetensors, RejectsHeaderLargerThanFileOr100MB) {
  Broken f;
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(le64(200'000'000) + "{}")), f.path, "header too large", "limit");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(le64(~0ull) + "{}")), f.path, "header too large");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(le64(100) + "{\"a\": 1}")), f.path, "header too large",
                   "truncated");
}

TEST(Safetensors, RejectsHeaderThatIsNotAJsonObject) {
  Broken f;
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make("{ not json", "")), f.path, "not valid JSON");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make("{\"a\": {}} trailing", "")), f.path, "not valid JSON");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make("[1, 2]", "")), f.path, "does not start with '{'");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(" {}", "")), f.path, "does not start with '{'");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(le64(0))), f.path, "does not start with '{'");
  // A name with a newline is escaped: the message stays one line.
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"a\nb": 5})", "")), f.path, "'a\\x0ab'", "not an object");
}

TEST(Safetensors, RejectsEntryMissingAField) {
  Broken f;
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"w.a": {"shape": [1], "data_offsets": [0, 4]}})", "abcd")),
                   f.path, "tensor 'w.a'", "lacks \"dtype\"");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"w.b": {"dtype": "F32", "data_offsets": [0, 4]}})", "abcd")),
                   f.path, "tensor 'w.b'", "lacks \"shape\"");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"w.c": {"dtype": "F32", "shape": [1]}})", "abcd")), f.path,
                   "tensor 'w.c'", "lacks \"data_offsets\"");
}

TEST(Safetensors, RejectsEntryFieldsOfWrongJsonType) {
  Broken f;
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"t1": [1, 2]})", "")), "tensor 't1'", "not an object");
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"t2": {"dtype": 5, "shape": [1], "data_offsets": [0, 4]}})", "abcd")),
      "tensor 't2'", "\"dtype\" is not a string");
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"t3": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", "abcd")),
      "tensor 't3'", "\"shape\" is not an array");
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"t4": {"dtype": "F32", "shape": [1], "data_offsets": [4]}})", "abcd")),
      "tensor 't4'", "\"data_offsets\" is not [begin, end]");
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"t5": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}})", "abcd")),
      "tensor 't5'", "\"data_offsets\" is not [begin, end]");
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"t6": {"dtype": "F32", "shape": [1], "data_offsets": [-1, 4]}})", "abcd")),
      "tensor 't6'", "\"data_offsets\" is not [begin, end]");
}

TEST(Safetensors, RejectsNegativeOrNonIntegerDims) {
  Broken f;
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"neg": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "abcd")),
      f.path, "tensor 'neg'", "negative dimension");
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"frac": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", "abcd")),
      "tensor 'frac'", "non-integer dimension");
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"str": {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]}})", "abcd")),
      "tensor 'str'", "non-integer dimension");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(
                       R"({"huge": {"dtype": "U8", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})", "abcd")),
                   "tensor 'huge'", "shape/dtype mismatch");
}

TEST(Safetensors, RejectsUnknownAndUnsupportedDtypes) {
  Broken f;
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 4]}})", "abcd")),
      f.path, "tensor 'w'", "unknown dtype 'F128'", "BF16");
  for (const std::string d : {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2"}) {
    std::string h = R"({"w": {"dtype": ")" + d + R"(", "shape": [0], "data_offsets": [0, 0]}})";
    EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(h, "")), "tensor 'w'", "dtype " + d,
                     "cannot be held by LibTorch 1.13");
  }
}

TEST(Safetensors, RejectsBeginAfterEnd) {
  Broken f;
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", "abcd")),
      f.path, "tensor 'w'", "begin > end");
}

TEST(Safetensors, RejectsOffsetsOutOfRangeAndTruncatedFiles) {
  Broken f;
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", "abcd")),
      f.path, "tensor 'w'", "out of range", "truncated");
  // A good file cut short.
  mtl::write_safetensors(f.path, {{"a", torch::ones({4})}, {"b", torch::ones({4})}});
  std::string good = mtl_test::read_file(f.path);
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(good.substr(0, good.size() - 3))), "tensor 'b'", "out of range");
}

TEST(Safetensors, RejectsShapeDtypeMismatch) {
  Broken f;
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", "abcd")),
      f.path, "tensor 'w'", "shape [2] of dtype F32 needs 8 bytes", "shape/dtype mismatch");
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"s": {"dtype": "F64", "shape": [], "data_offsets": [0, 4]}})", "abcd")),
      "tensor 's'", "shape/dtype mismatch");
}

TEST(Safetensors, RejectsOverlappingTensors) {
  Broken f;
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                                                R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                                std::string(12, '\0'))),
                   f.path, "tensor 'b'", "overlap tensor 'a'");
  // The same bytes twice (an aliasing writer) are an overlap too.
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                                                R"( "b": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}})",
                                                std::string(4, '\0'))),
                   "tensor 'b'", "overlap tensor 'a'");
}

TEST(Safetensors, RejectsHolesInTheDataSection) {
  Broken f;
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                                                R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
                                                std::string(12, '\0'))),
                   f.path, "tensor 'b'", "hole", "'a' ends at 4");
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"late": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                                   std::string(8, '\0'))),
      "tensor 'late'", "hole", "data section starts at 0");
  EXPECT_MTL_ERROR(
      mtl::read_safetensors(f.make(R"({"last": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                                   std::string(9, '\0'))),
      "hole", "after tensor 'last'");
}

TEST(Safetensors, RejectsDuplicateTensorNames) {
  Broken f;
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                                                R"( "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                                                std::string(8, '\0'))),
                   f.path, "tensor 'w'", "appears twice");
}

TEST(Safetensors, RejectsNonStringMetadata) {
  Broken f;
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"__metadata__": {"ok": "x", "epochs": 3}})", "")), f.path,
                   "metadata value of key 'epochs' is not a string");
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"__metadata__": ["a"]})", "")), "\"__metadata__\" is not an object");
}

TEST(Safetensors, RejectsBoolBytesOtherThan0And1) {
  Broken f;
  EXPECT_MTL_ERROR(mtl::read_safetensors(f.make(R"({"mask": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}})",
                                                std::string("\x01\x02", 2))),
                   "tensor 'mask'", "BOOL data holds byte 2");
}

TEST(Safetensors, WriterRejectsBadNamesAndDtypes) {
  mtl_test::TempDir dir("safetensors");
  const std::string path = dir.file("w.safetensors");
  at::Tensor x = torch::ones({2});
  EXPECT_MTL_ERROR(mtl::write_safetensors(path, {{"a", x}, {"a", x}}), path, "tensor 'a'", "given twice");
  EXPECT_MTL_ERROR(mtl::write_safetensors(path, {{"a", x}, {"", x}}), path, "tensor #1 has an empty name");
  EXPECT_MTL_ERROR(mtl::write_safetensors(path, {{"__metadata__", x}}), "tensor '__metadata__'", "reserved");
  EXPECT_MTL_ERROR(mtl::write_safetensors(path, {{"__metadata__.w", x}}), "tensor '__metadata__.w'", "reserved");
  EXPECT_MTL_ERROR(mtl::write_safetensors(path, {{"z", torch::ones({2}, torch::kComplexFloat)}}), "tensor 'z'",
                   "ComplexFloat", "safetensors cannot hold");
  EXPECT_MTL_ERROR(mtl::write_safetensors(path, {{"q", torch::quantize_per_tensor(x, 0.1, 0, torch::kQInt8)}}),
                   "tensor 'q'", "safetensors cannot hold");
  EXPECT_MTL_ERROR(mtl::write_safetensors(path, {{"u", at::Tensor()}}), "tensor 'u'", "undefined");
  EXPECT_MTL_ERROR(mtl::write_safetensors(path, {{"a", x}}, {{"k", "1"}, {"k", "2"}}), "metadata key 'k'");
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Safetensors, FailedWriteLeavesTheOldFile) {
  mtl_test::TempDir dir("safetensors");
  const std::string path = dir.file("keep.safetensors");
  mtl::write_safetensors(path, {{"a", torch::arange(5)}});
  EXPECT_THROW(mtl::write_safetensors(path, {{"a", torch::ones({2})}, {"b", torch::ones({1}, torch::kComplexDouble)}}),
               mtl::Error);
  auto c = mtl::read_safetensors(path);
  ASSERT_EQ(c.tensors.size(), 1u);
  EXPECT_TRUE(torch::equal(c.tensors[0].second, torch::arange(5)));
  // An unwritable destination is an mtl::Error naming it, not a crash.
  EXPECT_MTL_ERROR(mtl::write_safetensors(dir.file("no/such/dir/x.safetensors"), {{"a", torch::ones({1})}}),
                   "x.safetensors");
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename(), "keep.safetensors") << "temporary left behind";
}
