// `mtl train --nproc N`: the ranks of a distributed run on this machine without torchrun. The launcher starts N
// copies of this program with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR=127.0.0.1, MASTER_PORT: a free port), waits for them and returns an exit code for the run.
//
//   int code = mtl::run_local_ranks({"/path/mtl", "train", "cfg.yaml", "--threads", "1"}, 2);
#pragma once

#include <string>
#include <vector>

namespace mtl {

/// Runs `argv` (argv[0]: the program) as `nproc` local ranks and waits for every one. Ctrl-C reaches the ranks
/// (they share the terminal's process group); the launcher itself ignores it while they run. Returns 0 when every
/// rank succeeded, else rank 0's exit code if it failed, else the first failed rank's (128 + signal for a rank
/// killed by a signal). mtl::Error when the environment already holds a launcher's WORLD_SIZE, or a rank cannot
/// be started.
int run_local_ranks(const std::vector<std::string>& argv, int nproc);

/// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice).
int free_local_port();

}  // namespace mtl
