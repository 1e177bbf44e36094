// Atomic file writes: write to a temporary file in the same directory, fsync, rename over the target.
// A crash or a full disk leaves either the old file or the new one, never a partial one.
#pragma once

#include <functional>
#include <string>

namespace mtl {

/// Writes `content` to `path` atomically; throws mtl::Error naming `path` on failure.
void write_file_atomic(const std::string& path, const std::string& content);

/// Calls `write(tmp_path)` to produce the file, then fsyncs and renames it onto `path`. The temporary is
/// removed if `write` throws.
void write_atomic(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

/// Creates `dir` (and parents); throws mtl::Error naming it when that fails or it is not writable.
void ensure_writable_dir(const std::string& dir);

}  // namespace mtl
