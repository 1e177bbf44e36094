// Single-task baselines for delta-m: one model per task with the same backbone, data, optimizer, scheduler,
// trainer budget and seed as the multi-task config, only that task's head, equal weighting. Their final
// test metrics go into a JSON file, which every later evaluation of the multi-task config reads to report
// delta-m (mtl/metrics/delta_m.h: positive = multi-task better).
//
//   mtl baselines configs/multi_fashion.yaml      # -> runs/multi_fashion.baselines/baselines.json
//   mtl train configs/multi_fashion.yaml          # eval lines, tables and `mtl eval` now show delta-m
//
// Each single-task config is derived from the multi-task config's *resolved* form (every value read,
// defaults included), so nothing can drift between the two: only `tasks` (one task, weight 1: a loss weight
// means nothing alone), `weighting` (ew), `trainer.run_dir` (<run_dir>.baselines/<task>) and `baselines`
// (none) change. The file records what produced it: the parts of the resolved config that the numbers
// depend on (data, model, optimizer, scheduler, trainer budget and seed, engine mode; per task its label,
// head, loss and metrics), as canonical one-line YAML. A file whose parts differ from the config is stale:
// delta-m is not reported and the note says which parts differ. Thread counts, logging and checkpoint
// intervals, cache directories and the weighting method do not enter: they do not change what a baseline
// means.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mtl/run/evaluate.h"
#include "mtl/run/run_config.h"

namespace mtl {

/// What the baseline numbers depend on, as canonical one-line YAML per part.
struct BaselineFingerprint {
  std::map<std::string, std::string> parts;  // data, model, optimizer, scheduler, trainer, engine
  std::map<std::string, std::string> tasks;  // task -> its section without `weight`
};

/// The fingerprint of a config after assemble has read it (from Config::resolved()).
BaselineFingerprint baseline_fingerprint(const Config& config);

struct Baselines {
  std::string config;                          // the config file that produced them
  BaselineFingerprint fingerprint;
  EvalResult results;                          // one TaskResult per task, from its single-task run
  std::map<std::string, std::string> run_dirs; // task -> run directory of its single-task run
  std::map<std::string, int64_t> steps;        // task -> optimizer steps of its single-task run
};

/// Reads a baselines file; throws mtl::Error naming `path` (one line) when it is missing or malformed.
Baselines read_baselines(const std::string& path);
/// Writes `b` to `path` atomically (creating the directory).
void write_baselines(const Baselines& b, const std::string& path);

/// Why `b` does not fit `rc` (empty = it fits): config parts that differ, tasks missing or changed.
std::vector<std::string> baseline_mismatches(const Baselines& b, const RunConfig& rc);

/// The single-task config of `task` (one of rc's tasks), derived from rc's resolved config as above.
Config single_task_config(const RunConfig& rc, const std::string& task);

struct BaselinesRunOptions {
  bool progress = true;  // progress display of each single-task run on stderr
};

struct BaselinesRun {
  Baselines baselines;
  std::string path;          // where the file was written
  bool interrupted = false;  // a single-task run was stopped by Ctrl-C; no file was written
};

/// Trains the single-task model of every task of `rc` (one after the other, each exactly as `mtl train`
/// would train its single-task config) and writes rc.baselines. Needs >= 2 tasks and `baselines` not none.
BaselinesRun run_baselines(const RunConfig& rc, const BaselinesRunOptions& options);

struct BaselinesLookup {
  std::optional<Baselines> baselines;  // the file of rc.baselines, when it exists and fits
  std::string path;
  std::string note;  // why there are none (stale, not written yet although configured); "" if none expected
};

/// Looks for rc's baselines file. A file that exists but does not parse throws mtl::Error naming it.
BaselinesLookup find_baselines(const RunConfig& rc);

/// Sets result.delta_m from rc's baselines file when it exists and fits (mtl eval); returns why not ("" when
/// it was set or none is configured). A file that does not parse throws mtl::Error naming it.
std::string attach_baselines(EvalResult& result, const RunConfig& rc);

/// Sets result.delta_m from the baselines' metrics.
void attach_delta_m(EvalResult& result, const Baselines& b);

}  // namespace mtl
