// TensorBoard event files, written by mtl itself (no TensorFlow): the tfevents record format (a little-endian
// uint64 length, its masked CRC32C, the serialized Event protocol buffer, the data's masked CRC32C), with Events
// that carry scalar Summaries. TensorBoard reads every file whose name contains "tfevents" in a directory.
//
//   mtl::TfEventsWriter tb("runs/x/tensorboard");   // a new file per writer: events.out.tfevents.<time>.<host>.<pid>
//   tb.scalar("train/left/loss", 50, 0.61);
//   tb.flush();                                       // also every 10 s of writing, and when destroyed
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

namespace mtl {

/// CRC-32C (Castagnoli), as TensorFlow's record format uses it.
uint32_t crc32c(const void* data, size_t size);
/// TensorFlow's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t size);

/// The serialized Event {wall_time, step, summary {value {tag, simple_value}}} of one scalar.
std::string scalar_event(double wall_time, int64_t step, const std::string& tag, float value);

class TfEventsWriter {
 public:
  /// Creates `dir` if needed and a new event file in it, starting with the file-version Event
  /// ("brain.Event:2"). Throws mtl::Error naming the directory or file when it cannot.
  explicit TfEventsWriter(const std::string& dir);
  ~TfEventsWriter();
  TfEventsWriter(const TfEventsWriter&) = delete;
  TfEventsWriter& operator=(const TfEventsWriter&) = delete;

  /// One scalar at `step`, stamped with the current time; flushed when 10 s have passed since the last flush.
  void scalar(const std::string& tag, int64_t step, float value);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void record(const std::string& data);
  std::string path_;
  std::ofstream out_;
  std::chrono::steady_clock::time_point last_flush_;
};

}  // namespace mtl
