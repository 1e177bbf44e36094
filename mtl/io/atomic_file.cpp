#include "mtl/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "mtl/core/error.h"

namespace fs = std::filesystem;

namespace mtl {

namespace {
void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

void write_atomic(const std::string& path, const std::function<void(const std::string&)>& write) {
  static std::atomic<int> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  try {
    write(tmp);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  fsync_path(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    throw Error(path, std::string("cannot write file: ") + std::strerror(err));
  }
  fs::path parent = fs::path(path).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_atomic(path, [&](const std::string& tmp) {
    std::FILE* file = std::fopen(tmp.c_str(), "wb");
    if (file == nullptr) throw Error(path, std::string("cannot write file: ") + std::strerror(errno));
    int error = 0;
    if (!content.empty() && std::fwrite(content.data(), 1, content.size(), file) != content.size()) error = errno;
    if (std::fflush(file) != 0 && error == 0) error = errno;
    if (std::fclose(file) != 0 && error == 0) error = errno;
    if (error != 0) throw Error(path, std::string("cannot write file: ") + std::strerror(error));
  });
}

void ensure_writable_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir, "cannot create directory: " + ec.message());
  if (!fs::is_directory(dir)) throw Error(dir, "exists but is not a directory");
  if (::access(dir.c_str(), W_OK) != 0) throw Error(dir, "directory is not writable");
}

}  // namespace mtl
