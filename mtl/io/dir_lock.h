// One process per run directory: DirLock holds an exclusive flock(2) on DIR/.mtl.lock for its lifetime (the
// file holds the owner's pid, for the error message). The kernel drops the lock when the process ends, however
// it ends (kill -9 included), so a crashed run never leaves its directory locked.
//
//   std::optional<mtl::DirLock> lock = mtl::DirLock::try_lock(run_dir);
//   if (!lock) throw mtl::Error(run_dir, "in use by " + mtl::DirLock::owner(run_dir));
#pragma once

#include <optional>
#include <string>

namespace mtl {

class DirLock {
 public:
  /// Locks `dir` (which must exist), or returns nothing when another process holds it; throws mtl::Error
  /// naming the lock file when it cannot be created.
  static std::optional<DirLock> try_lock(const std::string& dir);
  /// Who holds `dir`'s lock, in words ("process 1234", or "another process" when unknown).
  static std::string owner(const std::string& dir);
  /// The lock file's name inside a locked directory.
  static constexpr const char* kFileName = ".mtl.lock";

  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock();

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

/// Removes the temporary files that atomic writes (mtl/io/atomic_file.h) left in `dir` when a process died
/// mid-write; call it only while holding the directory's lock.
void remove_stale_temporaries(const std::string& dir);

}  // namespace mtl
