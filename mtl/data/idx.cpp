#include "mtl/data/idx.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "mtl/core/error.h"
#include "mtl/core/text.h"

namespace mtl {
namespace {

struct ElementType {
  uint8_t code;
  at::ScalarType dtype;
  int64_t bytes;
  const char* name;
};

const ElementType kElementTypes[] = {
    {0x08, at::kByte, 1, "uint8"},   {0x09, at::kChar, 1, "int8"},     {0x0B, at::kShort, 2, "int16"},
    {0x0C, at::kInt, 4, "int32"},    {0x0D, at::kFloat, 4, "float32"}, {0x0E, at::kDouble, 8, "float64"},
};

const char* kKnownTypes = "0x08 (uint8), 0x09 (int8), 0x0B (int16), 0x0C (int32), 0x0D (float32) or 0x0E (float64)";

const ElementType* type_by_code(uint8_t code) {
  for (const auto& t : kElementTypes)
    if (t.code == code) return &t;
  return nullptr;
}

const ElementType* type_by_dtype(at::ScalarType dtype) {
  for (const auto& t : kElementTypes)
    if (t.dtype == dtype) return &t;
  return nullptr;
}

std::string hex_byte(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02x", b);
  return buf;
}

constexpr bool kLittleEndianHost = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

// IDX stores elements big-endian; swap in place on little-endian hosts.
void swap_bytes(char* data, int64_t count, int64_t width) {
  if (!kLittleEndianHost || width == 1) return;
  for (int64_t i = 0; i < count; ++i) std::reverse(data + i * width, data + (i + 1) * width);
}

// gzFile wrapper that turns zlib's error states into mtl::Error naming the file. zlib reads plain files
// transparently, so this reads both kinds.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) {
      int e = errno;
      throw Error(path, std::string("cannot open IDX file: ") + (e ? std::strerror(e) : "out of memory"));
    }
    gzbuffer(file_, 1 << 17);
  }
  ~GzReader() {
    if (file_) gzclose(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  /// Reads up to `n` bytes; fewer only at the end of the data.
  int64_t read(void* dst, int64_t n) {
    int64_t total = 0;
    while (total < n) {
      unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - total, 1 << 30));
      int got = gzread(file_, static_cast<char*>(dst) + total, chunk);
      check_stream();
      if (got <= 0) break;
      total += got;
    }
    return total;
  }

  /// True when the file is not gzip-compressed (valid after the first read).
  bool plain() const { return gzdirect(file_) == 1; }

  /// Closes the file, reporting a stream that ended in the middle of a gzip member.
  void close() {
    int rc = gzclose(file_);
    file_ = nullptr;
    if (rc == Z_BUF_ERROR) throw Error(path_, "gzip stream ends early (truncated .gz file)");
    if (rc != Z_OK) throw Error(path_, "error reading gzip stream (zlib code " + std::to_string(rc) + ")");
  }

 private:
  // A truncated gzip stream is reported only through gzerror (gzread then returns 0, not -1).
  void check_stream() {
    int code = Z_OK;
    const char* msg = gzerror(file_, &code);
    if (code == Z_OK) return;
    if (code == Z_BUF_ERROR) throw Error(path_, "gzip stream ends early (truncated .gz file)");
    if (code == Z_ERRNO) throw Error(path_, std::string("read error: ") + std::strerror(errno));
    std::string m = msg ? msg : "";
    // zlib prefixes its message with the path, which Error already shows.
    if (m.compare(0, path_.size() + 2, path_ + ": ") == 0) m = m.substr(path_.size() + 2);
    throw Error(path_, "corrupt gzip stream: " + m);
  }

  std::string path_;
  gzFile file_ = nullptr;
};

struct ParsedHeader {
  const ElementType* type = nullptr;
  std::vector<int64_t> shape;
  int64_t header_bytes = 0;
  int64_t payload_bytes = 0;
};

ParsedHeader parse_header(GzReader& in, const std::string& path) {
  uint8_t magic[4] = {0, 0, 0, 0};
  int64_t got = in.read(magic, 4);
  if (got < 4) throw Error(path, "not an IDX file: expected a 4-byte magic number, the file has " +
                                     std::to_string(got) + " bytes");
  if (magic[0] != 0 || magic[1] != 0 || magic[3] == 0)
    throw Error(path, "not an IDX file: expected magic bytes 00 00 <type> <ndims>, got " + hex_byte(magic[0]) +
                          " " + hex_byte(magic[1]) + " " + hex_byte(magic[2]) + " " + hex_byte(magic[3]));
  ParsedHeader h;
  h.type = type_by_code(magic[2]);
  if (!h.type)
    throw Error(path, "unsupported IDX element type 0x" + hex_byte(magic[2]) + "; expected " + kKnownTypes);
  int ndims = magic[3];
  std::vector<uint8_t> dims(4 * ndims);
  if (in.read(dims.data(), 4 * ndims) < 4 * ndims)
    throw Error(path, "truncated IDX header: expected " + std::to_string(ndims) + " dimension sizes");
  int64_t elements = 1;
  for (int i = 0; i < ndims; ++i) {
    const uint8_t* d = &dims[4 * i];
    int64_t n = (int64_t(d[0]) << 24) | (int64_t(d[1]) << 16) | (int64_t(d[2]) << 8) | int64_t(d[3]);
    h.shape.push_back(n);
    // Guard the product: a garbage header must not overflow into a small number.
    if (n > 0 && elements > (int64_t(1) << 50) / n)
      throw Error(path, "IDX header declares an impossibly large shape " + shape_text(h.shape));
    elements *= n;
  }
  h.header_bytes = 4 + 4 * ndims;
  h.payload_bytes = elements * h.type->bytes;
  return h;
}

int64_t file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return st.st_size;
}

// Unlinks a temporary file unless released (the rename succeeded).
struct TempFileGuard {
  std::string path;
  bool active = true;
  ~TempFileGuard() {
    if (active) ::unlink(path.c_str());
  }
};

std::string temp_path_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

}  // namespace

IdxHeader read_idx_header(const std::string& path) {
  GzReader in(path);
  ParsedHeader h = parse_header(in, path);
  return IdxHeader{h.type->dtype, h.shape};
}

at::Tensor read_idx(const std::string& path) {
  GzReader in(path);
  ParsedHeader h = parse_header(in, path);
  std::string declared = shape_text(h.shape) + " of " + h.type->name;

  // Check the declared size against what the file can hold before allocating, so a garbage header
  // gives an error instead of an attempt to allocate terabytes. Deflate expands at most ~1032:1.
  int64_t on_disk = file_size(path);
  int64_t capacity = in.plain() ? on_disk - h.header_bytes : on_disk * 1100;
  if (on_disk >= 0 && h.payload_bytes > capacity)
    throw Error(path, "truncated IDX data: expected " + std::to_string(h.payload_bytes) + " bytes for shape " +
                          declared + ", the file is too short");

  at::Tensor out = at::empty(h.shape, at::TensorOptions().dtype(h.type->dtype));
  char* data = static_cast<char*>(out.data_ptr());
  int64_t got = in.read(data, h.payload_bytes);
  if (got < h.payload_bytes)
    throw Error(path, "truncated IDX data: expected " + std::to_string(h.payload_bytes) + " bytes for shape " +
                          declared + ", got " + std::to_string(got));
  char probe;
  if (in.read(&probe, 1) != 0)
    throw Error(path, "trailing bytes after the IDX data: expected exactly " + std::to_string(h.payload_bytes) +
                          " bytes for shape " + declared);
  in.close();
  swap_bytes(data, out.numel(), h.type->bytes);
  return out;
}

void write_idx(const std::string& path, const at::Tensor& tensor, bool gzip) {
  const ElementType* type = type_by_dtype(tensor.scalar_type());
  if (!type)
    throw Error(path, std::string("cannot write a ") + c10::toString(tensor.scalar_type()) +
                          " tensor as IDX; expected uint8, int8, int16, int32, float32 or float64");
  if (tensor.dim() < 1 || tensor.dim() > 255)
    throw Error(path, "cannot write a " + std::to_string(tensor.dim()) + "-dim tensor as IDX; expected 1 to 255 dims");
  std::vector<uint8_t> header = {0, 0, type->code, static_cast<uint8_t>(tensor.dim())};
  for (int64_t n : tensor.sizes()) {
    if (n > 0xFFFFFFFFll) throw Error(path, "dimension " + std::to_string(n) + " does not fit IDX's uint32");
    for (int shift = 24; shift >= 0; shift -= 8) header.push_back(static_cast<uint8_t>(n >> shift));
  }
  at::Tensor t = tensor.cpu().contiguous();
  const char* data = static_cast<const char*>(t.data_ptr());
  const int64_t bytes = t.numel() * type->bytes;

  TempFileGuard tmp{temp_path_for(path)};
  int fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path, std::string("cannot create file: ") + std::strerror(errno));

  // Writes go through one of two sinks; both receive big-endian chunks.
  gzFile gz = nullptr;
  int sync_fd = fd;
  if (gzip) {
    sync_fd = ::dup(fd);  // gzclose closes `fd`; keep a handle for fsync
    gz = gzdopen(fd, "wb1");
    if (!gz || sync_fd < 0) {
      if (gz) gzclose(gz); else ::close(fd);
      if (sync_fd >= 0) ::close(sync_fd);
      throw Error(path, "cannot start a gzip stream");
    }
  }
  auto fail = [&](const std::string& what) {
    if (gz) gzclose(gz);
    else ::close(fd);
    if (gzip) ::close(sync_fd);
    throw Error(path, what);
  };
  auto put = [&](const char* p, int64_t n) {
    while (n > 0) {
      if (gz) {
        unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n, 1 << 30));
        if (gzwrite(gz, p, chunk) != static_cast<int>(chunk)) fail("write error (gzip)");
        p += chunk;
        n -= chunk;
      } else {
        ssize_t w = ::write(fd, p, static_cast<size_t>(std::min<int64_t>(n, 1 << 30)));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fail(std::string("write error: ") + std::strerror(errno));
        p += w;
        n -= w;
      }
    }
  };

  put(reinterpret_cast<const char*>(header.data()), static_cast<int64_t>(header.size()));
  if (!kLittleEndianHost || type->bytes == 1) {
    put(data, bytes);
  } else {
    std::vector<char> buf(1 << 20);
    const int64_t per_chunk = static_cast<int64_t>(buf.size()) / type->bytes;
    for (int64_t done = 0; done < t.numel(); done += per_chunk) {
      int64_t count = std::min(per_chunk, t.numel() - done);
      std::memcpy(buf.data(), data + done * type->bytes, count * type->bytes);
      swap_bytes(buf.data(), count, type->bytes);
      put(buf.data(), count * type->bytes);
    }
  }

  if (gz) {
    int rc = gzclose(gz);
    gz = nullptr;
    if (rc != Z_OK) {
      ::close(sync_fd);
      throw Error(path, "write error (gzip, zlib code " + std::to_string(rc) + ")");
    }
  }
  bool synced = ::fsync(sync_fd) == 0;
  int sync_errno = errno;
  ::close(sync_fd);
  if (!synced) throw Error(path, std::string("cannot flush file to disk: ") + std::strerror(sync_errno));
  if (::rename(tmp.path.c_str(), path.c_str()) != 0)
    throw Error(path, std::string("cannot move the written file into place: ") + std::strerror(errno));
  tmp.active = false;
}

}  // namespace mtl
