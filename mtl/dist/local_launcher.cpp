#include "mtl/dist/local_launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "mtl/core/error.h"

namespace mtl {

int free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("mtl train --nproc", std::string("cannot open a socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  close(fd);
  if (!ok) throw Error("mtl train --nproc", "found no free TCP port on 127.0.0.1");
  return ntohs(a.sin_port);
}

namespace {

// The child's side of fork(): torchrun's variables, then this program again. Only async-signal-safe calls
// would be strictly safe here; setenv before exec is the common practice of launchers and fine in a process
// whose other threads (none yet: the launcher starts no threads) hold no locks.
[[noreturn]] void exec_rank(const std::vector<std::string>& argv, int rank, int nproc, int port) {
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  std::signal(SIGINT, SIG_DFL);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv("/proc/self/exe", args.data());
  execvp(args[0], args.data());
  _exit(127);
}

// The ranks of the running launch, for the SIGTERM handler (kill() is async-signal-safe; the array is filled
// before the handler is installed and not changed while it is).
constexpr int kMaxRanks = 1024;
pid_t g_ranks[kMaxRanks];
std::atomic<int> g_rank_count{0};

// A scheduler's SIGTERM to the launcher goes on to every rank: each checkpoints and exits 143 (the launcher
// then returns their status).
extern "C" void forward_sigterm(int) {
  const int n = g_rank_count.load();
  for (int r = 0; r < n; ++r)
    if (g_ranks[r] > 0) kill(g_ranks[r], SIGTERM);  // 0: reaped (never kill(0, ...): the whole group)
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int run_local_ranks(const std::vector<std::string>& argv, int nproc) {
  if (const char* w = std::getenv("WORLD_SIZE"); w && *w)
    throw Error("mtl train --nproc", std::string("WORLD_SIZE=") + w +
                                         " is already set (a launcher such as torchrun started this process); "
                                         "use one or the other");
  const int port = free_local_port();
  // The ranks take Ctrl-C (same process group) and checkpoint; the launcher waits for them.
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &previous);
  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = fork();
    if (pid == 0) exec_rank(argv, r, nproc, port);
    if (pid < 0) {
      for (pid_t p : pids) kill(p, SIGTERM);
      for (pid_t p : pids) waitpid(p, nullptr, 0);
      sigaction(SIGINT, &previous, nullptr);
      throw Error("mtl train --nproc", "cannot start rank " + std::to_string(r) + ": " + std::strerror(errno));
    }
    pids.push_back(pid);
  }
  for (int r = 0; r < nproc && r < kMaxRanks; ++r) g_ranks[r] = pids[r];
  g_rank_count.store(std::min(nproc, kMaxRanks));
  struct sigaction forward {}, previous_term {};
  forward.sa_handler = forward_sigterm;
  sigaction(SIGTERM, &forward, &previous_term);
  std::vector<int> codes(nproc, 0);
  for (int r = 0; r < nproc; ++r) {
    int status = 0;
    while (waitpid(pids[r], &status, 0) < 0 && errno == EINTR) {
    }
    if (r < kMaxRanks) g_ranks[r] = 0;
    codes[r] = exit_code(status);
  }
  sigaction(SIGTERM, &previous_term, nullptr);
  g_rank_count.store(0);
  sigaction(SIGINT, &previous, nullptr);
  if (codes[0] != 0) return codes[0];
  for (int c : codes)
    if (c != 0) return c;
  return 0;
}

}  // namespace mtl
