// A run read back from its directory (what `mtl train` wrote there): the lines of metrics.jsonl and the resolved
// config.yaml, for `mtl report` and sweeps. Errors are one line naming the directory, or the file and line.
//
//   RunLog run = read_run_log("runs/multi_fashion");
//   for (const LogLine* l : run.lines_of("eval")) l->get("left/accuracy");
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mtl {

/// One line of metrics.jsonl: its event, position and numeric values in file order (null -> NaN; strings and
/// other non-numbers are left out).
struct LogLine {
  std::string event;
  int64_t step = 0;
  int64_t epoch = 0;
  std::vector<std::pair<std::string, double>> values;

  bool has(const std::string& key) const;
  double get(const std::string& key) const;  // NaN when absent
};

struct RunLog {
  std::string dir;     // as given
  std::string name;    // the directory's last component
  std::string config;  // config.yaml's text ("" when the directory has none)
  std::vector<LogLine> lines;

  std::vector<const LogLine*> lines_of(const std::string& event) const;
  /// Task names in the order of their first `<task>/loss` key.
  std::vector<std::string> tasks() const;
};

/// Reads `dir`/metrics.jsonl and `dir`/config.yaml. Throws mtl::Error for a missing directory, a directory without
/// metrics.jsonl or without any line, and a line that is not a JSON object with `event` and `step` (file:line).
/// A last line without its newline that does not parse is ignored: the run is still writing it.
RunLog read_run_log(const std::string& dir);

}  // namespace mtl
