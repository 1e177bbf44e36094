#include "mtl/io/tfevents.h"

#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>

#include "mtl/core/error.h"

namespace mtl {

namespace {

// The reflected Castagnoli polynomial's table, one entry per byte value.
const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// Protocol-buffer wire format: what an Event with a scalar Summary needs.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void key(std::string& out, int field, int wire_type) { varint(out, (static_cast<uint64_t>(field) << 3) | wire_type); }

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "mtl's TensorBoard writer assumes a little-endian host (it copies values' bytes as they are)");
#endif

template <typename T>
void little_endian(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void length_delimited(std::string& out, int field, const std::string& bytes) {
  key(out, field, 2);
  varint(out, bytes.size());
  out += bytes;
}

// Event fields: 1 wall_time (double), 2 step (int64), 3 file_version (string), 5 summary (Summary).
// Summary: 1 value (repeated Value); Value: 1 tag (string), 2 simple_value (float).
std::string event_head(double wall_time, int64_t step) {
  std::string e;
  key(e, 1, 1);
  little_endian(e, wall_time);
  key(e, 2, 0);
  varint(e, static_cast<uint64_t>(step));
  return e;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  return buf;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto& table = crc_table();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string scalar_event(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string v;
  length_delimited(v, 1, tag);
  key(v, 2, 5);
  little_endian(v, value);
  std::string summary;
  length_delimited(summary, 1, v);
  std::string e = event_head(wall_time, step);
  length_delimited(e, 5, summary);
  return e;
}

TfEventsWriter::TfEventsWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir, "cannot create the TensorBoard directory: " + ec.message());
  // A new file per writer (a resumed run gets its own; TensorBoard merges them by step).
  const auto secs = static_cast<int64_t>(now_seconds());
  std::string base = (std::filesystem::path(dir) / ("events.out.tfevents." + std::to_string(secs) + "." +
                                                     host_name() + "." + std::to_string(::getpid())))
                         .string();
  path_ = base;
  for (int n = 1; std::filesystem::exists(path_); ++n) path_ = base + "." + std::to_string(n);
  out_.open(path_, std::ios::binary);
  if (!out_) throw Error(path_, "cannot open the TensorBoard event file for writing");
  std::string e = event_head(now_seconds(), 0);
  length_delimited(e, 3, "brain.Event:2");
  record(e);
  flush();
}

TfEventsWriter::~TfEventsWriter() {
  if (out_.is_open()) out_.flush();
}

void TfEventsWriter::record(const std::string& data) {
  std::string r;
  little_endian(r, static_cast<uint64_t>(data.size()));
  const uint32_t len_crc = masked_crc32c(r.data(), r.size());
  little_endian(r, len_crc);
  r += data;
  little_endian(r, masked_crc32c(data.data(), data.size()));
  out_.write(r.data(), static_cast<std::streamsize>(r.size()));
  if (!out_) throw Error(path_, "cannot write the TensorBoard event file (disk full?)");
}

void TfEventsWriter::scalar(const std::string& tag, int64_t step, float value) {
  record(scalar_event(now_seconds(), step, tag, value));
  if (std::chrono::steady_clock::now() - last_flush_ >= std::chrono::seconds(10)) flush();
}

void TfEventsWriter::flush() {
  out_.flush();
  last_flush_ = std::chrono::steady_clock::now();
}

}  // namespace mtl
