// IDX reader/writer: round trips, the exact byte layout, and every kind of malformed file.
#include "mtl/data/idx.h"

#include <zlib.h>

#include <filesystem>

#include "mtl/core/error.h"
#include "test_util.h"

using namespace std::string_literals;

namespace {

using mtl_test::TempDir;

std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

void write_gzip(const std::string& path, const std::string& data) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, data.data(), static_cast<unsigned>(data.size())), static_cast<int>(data.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// A valid uint8 IDX file of shape [10] holding 0..9.
std::string valid_u8_file() {
  std::string s = bytes({0, 0, 0x08, 1, 0, 0, 0, 10});
  for (int i = 0; i < 10; ++i) s.push_back(static_cast<char>(i));
  return s;
}

torch::Tensor sample(torch::ScalarType dtype, std::vector<int64_t> shape) {
  torch::manual_seed(7);
  if (dtype == torch::kFloat || dtype == torch::kDouble) return torch::randn(shape, dtype);
  int64_t lo = dtype == torch::kByte ? 0 : -100;
  return torch::randint(lo, 100, shape, torch::TensorOptions().dtype(dtype));
}

}  // namespace

TEST(IdxFile, RoundTripsEveryElementTypeGzipAndPlain) {
  TempDir dir("idx");
  for (auto dtype : {torch::kByte, torch::kChar, torch::kShort, torch::kInt, torch::kFloat, torch::kDouble}) {
    for (bool gz : {true, false}) {
      torch::Tensor t = sample(dtype, {3, 4, 5});
      std::string path = dir.file(std::string("t_") + c10::toString(dtype) + (gz ? ".gz" : ""));
      mtl::write_idx(path, t, gz);
      torch::Tensor back = mtl::read_idx(path);
      EXPECT_EQ(back.scalar_type(), dtype) << path;
      EXPECT_EQ(back.sizes(), t.sizes()) << path;
      EXPECT_TRUE(torch::equal(back, t)) << path;
      // gzip files start with the gzip magic; plain ones with the IDX magic.
      std::string head = mtl_test::read_file(path).substr(0, 2);
      EXPECT_EQ(head, gz ? bytes({0x1f, 0x8b}) : bytes({0, 0})) << path;
    }
  }
}

TEST(IdxFile, RoundTripsOneDimensionalAndEmpty) {
  TempDir dir("idx");
  torch::Tensor v = torch::arange(0, 200, torch::kInt);
  mtl::write_idx(dir.file("v.gz"), v);
  EXPECT_TRUE(torch::equal(mtl::read_idx(dir.file("v.gz")), v));
  torch::Tensor empty = torch::zeros({0, 28, 28}, torch::kByte);
  mtl::write_idx(dir.file("e"), empty, false);
  EXPECT_EQ(mtl::read_idx(dir.file("e")).sizes(), empty.sizes());
}

TEST(IdxFile, ReadsBigEndianElementsAsSpecified) {
  TempDir dir("idx");
  // int16 [3] = {1, -2, 256}, big-endian.
  mtl_test::write_file(dir.file("a"), bytes({0, 0, 0x0B, 1, 0, 0, 0, 3, 0x00, 0x01, 0xFF, 0xFE, 0x01, 0x00}));
  torch::Tensor t = mtl::read_idx(dir.file("a"));
  EXPECT_EQ(t.scalar_type(), torch::kShort);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1, -2, 256}, torch::kShort)));
  // float32 [1] = 1.5 (0x3FC00000), and the writer produces the same bytes.
  std::string f = bytes({0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3F, 0xC0, 0x00, 0x00});
  mtl_test::write_file(dir.file("f"), f);
  EXPECT_EQ(mtl::read_idx(dir.file("f")).item<float>(), 1.5f);
  mtl::write_idx(dir.file("f2"), torch::tensor({1.5f}), false);
  EXPECT_EQ(mtl_test::read_file(dir.file("f2")), f);
}

TEST(IdxFile, ReadsHeaderOnly) {
  TempDir dir("idx");
  mtl::write_idx(dir.file("h.gz"), torch::zeros({6, 2, 3}, torch::kFloat));
  mtl::IdxHeader h = mtl::read_idx_header(dir.file("h.gz"));
  EXPECT_EQ(h.dtype, torch::kFloat);
  EXPECT_EQ(h.shape, (std::vector<int64_t>{6, 2, 3}));
}

TEST(IdxFile, WriteIsAtomicAndOverwrites) {
  TempDir dir("idx");
  mtl::write_idx(dir.file("x.gz"), torch::ones({4}, torch::kByte));
  mtl::write_idx(dir.file("x.gz"), torch::zeros({5}, torch::kByte));
  EXPECT_TRUE(torch::equal(mtl::read_idx(dir.file("x.gz")), torch::zeros({5}, torch::kByte)));
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    EXPECT_EQ(e.path().filename(), "x.gz");  // no temporary file left behind
  }
  EXPECT_EQ(files, 1);
}

TEST(IdxFile, WriterRejectsWhatIdxCannotHold) {
  TempDir dir("idx");
  EXPECT_MTL_ERROR(mtl::write_idx(dir.file("l"), torch::zeros({3}, torch::kLong)), dir.file("l"), "Long"s);
  EXPECT_MTL_ERROR(mtl::write_idx(dir.file("s"), torch::zeros({}, torch::kByte)), dir.file("s"), "0-dim"s);
  EXPECT_MTL_ERROR(mtl::write_idx(dir.file("nodir/x"), torch::zeros({3}, torch::kByte)), dir.file("nodir/x"),
                   "cannot create"s);
}

TEST(IdxFile, RejectsMissingFile) {
  TempDir dir("idx");
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("absent.gz")), dir.file("absent.gz"), "cannot open"s,
                   "No such file"s);
}

TEST(IdxFile, RejectsBadMagic) {
  TempDir dir("idx");
  mtl_test::write_file(dir.file("text"), "hello, this is not an IDX file");
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("text")), dir.file("text"), "not an IDX file"s, "magic"s);
  mtl_test::write_file(dir.file("short"), bytes({0, 0}));
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("short")), dir.file("short"), "magic"s);
  mtl_test::write_file(dir.file("type"), bytes({0, 0, 0x07, 1, 0, 0, 0, 1, 0}));
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("type")), dir.file("type"), "element type 0x07"s, "0x08 (uint8)"s);
  write_gzip(dir.file("text.gz"), "gzipped text, still not IDX");
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("text.gz")), dir.file("text.gz"), "magic"s);
}

TEST(IdxFile, RejectsTruncatedHeaderAndPayload) {
  TempDir dir("idx");
  mtl_test::write_file(dir.file("hdr"), bytes({0, 0, 0x08, 3, 0, 0, 0, 10, 0, 0}));
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("hdr")), dir.file("hdr"), "truncated IDX header"s);
  std::string full = valid_u8_file();
  mtl_test::write_file(dir.file("plain"), full.substr(0, full.size() - 3));
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("plain")), dir.file("plain"), "truncated"s, "10 bytes"s);
  write_gzip(dir.file("short.gz"), full.substr(0, full.size() - 3));
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("short.gz")), dir.file("short.gz"), "truncated"s, "got 7"s);
  // A header declaring ~4 GB in a tiny file is rejected before allocating anything.
  mtl_test::write_file(dir.file("huge"), bytes({0, 0, 0x08, 1, 0xFF, 0xFF, 0xFF, 0xF0, 1, 2, 3}));
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("huge")), dir.file("huge"), "truncated"s);
}

TEST(IdxFile, RejectsTrailingBytes) {
  TempDir dir("idx");
  mtl_test::write_file(dir.file("plain"), valid_u8_file() + "x");
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("plain")), dir.file("plain"), "trailing bytes"s);
  write_gzip(dir.file("extra.gz"), valid_u8_file() + "xyz");
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("extra.gz")), dir.file("extra.gz"), "trailing bytes"s);
}

TEST(IdxFile, RejectsCorruptAndTruncatedGzip) {
  TempDir dir("idx");
  torch::Tensor t = torch::randint(0, 4, {64, 64}, torch::kByte);  // compressible: real deflate blocks
  mtl::write_idx(dir.file("ok.gz"), t, true);
  std::string gz = mtl_test::read_file(dir.file("ok.gz"));
  ASSERT_GT(gz.size(), 100u);

  std::string flipped = gz;
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 8; ++i) flipped[i] = static_cast<char>(~flipped[i]);
  mtl_test::write_file(dir.file("corrupt.gz"), flipped);
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("corrupt.gz")), dir.file("corrupt.gz"), "gzip"s);

  std::string bad_crc = gz;
  bad_crc[gz.size() - 6] = static_cast<char>(~bad_crc[gz.size() - 6]);  // inside the CRC-32 trailer
  mtl_test::write_file(dir.file("crc.gz"), bad_crc);
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("crc.gz")), dir.file("crc.gz"), "corrupt gzip stream"s);

  mtl_test::write_file(dir.file("cut.gz"), gz.substr(0, gz.size() / 2));
  EXPECT_MTL_ERROR(mtl::read_idx(dir.file("cut.gz")), dir.file("cut.gz"), "gzip stream ends early"s);
}
