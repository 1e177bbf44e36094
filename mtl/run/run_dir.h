// The run directory: chosen (never overwriting an earlier run), locked while a process trains in it, given the
// resolved config and the data artefacts; and its metrics log, cut back to a resumed checkpoint's position.
// Shared by the trainer (mtl/run/trainer.h) and the meta-trainer (mtl/run/meta_trainer.h).
#pragma once

#include <optional>
#include <string>

#include "mtl/io/dir_lock.h"
#include "mtl/io/metrics_log.h"
#include "mtl/run/assembler.h"

namespace mtl {

/// `base` if it does not exist or is empty, else base-2, base-3, ... (earlier runs are never overwritten).
std::string fresh_run_dir(const std::string& base);

/// The directory this run writes to (resume_dir when resuming, else trainer.run_dir or the next free one),
/// locked in `lock`, with config.yaml (config.resumed.yaml) and the data artefacts written.
std::string prepare_run_dir(const Run& run, const std::string& resume_dir, std::optional<DirLock>& lock);

/// The run's metrics log (rank 0's; others get a closed one that writes nothing), cut back to `keep_bytes`.
MetricsLog open_metrics_log(const RunConfig& rc, const std::string& run_dir, bool leader, int64_t keep_bytes);

}  // namespace mtl
