#include "mtl/run/run_dir.h"

#include <filesystem>

#include "mtl/core/error.h"
#include "mtl/io/atomic_file.h"

namespace fs = std::filesystem;

namespace mtl {

std::string fresh_run_dir(const std::string& base) {
  auto usable = [](const fs::path& p) { return !fs::exists(p) || (fs::is_directory(p) && fs::is_empty(p)); };
  if (usable(base)) return base;
  for (int i = 2;; ++i) {
    std::string candidate = base + "-" + std::to_string(i);
    if (usable(candidate)) return candidate;
  }
}

// Never overwrite an earlier run unless resuming it; the resolved config and the data artefacts go in first.
// The directory stays locked (`lock`) while this process trains: a second `mtl train` of a fresh run goes on to
// the next free directory, one that resumes or auto-resumes the same directory gets an error.
std::string prepare_run_dir(const Run& run, const std::string& resume_dir, std::optional<DirLock>& lock) {
  const bool resuming = !resume_dir.empty();
  // trainer.resume: auto reuses run_dir even without a checkpoint: a restarted job that died before its first
  // checkpoint starts over in the same directory, where its next restart will look.
  const std::string& base = run.config.trainer.run_dir;
  const bool fresh = !resuming && !run.config.trainer.auto_resume;
  std::string run_dir = resuming ? resume_dir : fresh ? fresh_run_dir(base) : base;
  if (resuming && !fs::exists(fs::path(run_dir) / "checkpoint.pt"))
    throw Error(run_dir, "cannot resume: no checkpoint.pt in this run directory");
  for (;;) {
    ensure_writable_dir(run_dir);
    lock = DirLock::try_lock(run_dir);
    if (lock) break;
    if (!fresh)
      throw Error(run_dir, "run directory in use: " + DirLock::owner(run_dir) +
                               " is training in it (wait for it to finish, or stop it first)");
    run_dir = fresh_run_dir(base);  // another process took it a moment ago: the next free one
  }
  if (!fresh) remove_stale_temporaries(run_dir);  // a killed process's unfinished checkpoint or config write
  write_file_atomic((fs::path(run_dir) / (resuming ? "config.resumed.yaml" : "config.yaml")).string(),
                    run.config.source.resolved_yaml());
  // The tokenizer and class vocabularies, for eval/predict/resume (a resumed run was built from them).
  if (!resuming) save_data_artifacts(*run.data, run.tokenizer.get(), run_dir);
  return run_dir;
}

// The run's metrics log (rank 0's; the other ranks get a closed one that writes nothing), cut back first: a
// resumed run drops what was logged after its checkpoint (`keep_bytes`, TrainPosition::log_bytes), a run that
// starts over in its directory (trainer.resume: auto before any checkpoint: keep_bytes 0) what the attempt that
// died there logged.
MetricsLog open_metrics_log(const RunConfig& rc, const std::string& run_dir, bool leader, int64_t keep_bytes) {
  MetricsLog log;
  if (!leader) return log;
  const std::string path = (fs::path(run_dir) / "metrics.jsonl").string();
  truncate_log_for_resume(path, keep_bytes);
  log = MetricsLog(path);
  if (rc.logging.tensorboard) log.mirror_to_tensorboard((fs::path(run_dir) / "tensorboard").string());
  return log;
}

}  // namespace mtl
