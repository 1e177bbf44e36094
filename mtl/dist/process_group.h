// The processes of one distributed run: torchrun's environment contract (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE, TORCHELASTIC_RESTART_COUNT), the
// rendezvous through a c10d TCPStore, and the c10d Gloo process group every collective goes through. Without
// WORLD_SIZE (or with WORLD_SIZE=1) a run is one process, as always.
//
//   mtl::LaunchEnv env = mtl::read_launch_env();                        // mtl::Error for malformed values
//   auto group = mtl::ProcessGroup::connect(env, config.distributed);   // nullptr for a single process
//   group->allreduce_sum(tensors);                                       // every rank, same call order
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mtl/dist/options.h"

namespace mtl {

/// What the launcher (torchrun, `mtl train --nproc`, SLURM script) put in the environment.
struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;  // TORCHELASTIC_USE_AGENT_STORE: torchrun's agent hosts the store
  int restart_count = 0;     // TORCHELASTIC_RESTART_COUNT
  bool distributed() const { return world_size > 1; }
};
/// Reads the variables through `getenv` (tests pass their own); mtl::Error naming the variable when one is
/// malformed or inconsistent (RANK outside [0, WORLD_SIZE), a port outside 1..65535, ...).
LaunchEnv read_launch_env(const std::function<const char*(const char*)>& getenv = nullptr);

/// One rank's membership in the run's Gloo process group. Collectives are blocking and must be called by every
/// rank in the same order; a rank that stops answering fails the others after the timeout with mtl::Error.
class ProcessGroup {
 public:
  /// nullptr when `env` is a single process. Rank 0 (or torchrun's agent) hosts the TCPStore at
  /// MASTER_ADDR:MASTER_PORT; the others connect. mtl::Error for a backend other than gloo, a port in use, an
  /// unreachable master, or ranks that disagree on WORLD_SIZE.
  static std::shared_ptr<ProcessGroup> connect(const LaunchEnv& env, const DistributedOptions& options);
  /// How a group reaches its peers beyond the store itself.
  struct Links {
    std::string gloo_host = "127.0.0.1";  // MASTER_ADDR: loopback for one machine, else the default interface
    /// A second connection to the store for the liveness beats (a TCPStore client is not shared between
    /// threads); null: the main store (thread-safe stores such as HashStore).
    c10::intrusive_ptr<c10d::Store> beat_store;
    bool store_on_rank0 = false;  // rank 0 hosts the store: when it is gone, rank 0 stopped
  };
  /// A group over an existing store (tests: several ranks as threads of one process over a HashStore). Each rank
  /// bumps a counter in the store every second from a thread of its own, so that when a collective fails the
  /// others can name the ranks that stopped (killed, or hung: their counters stand still).
  ProcessGroup(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size, std::chrono::milliseconds timeout,
               Links links);
  ProcessGroup(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size, std::chrono::milliseconds timeout)
      : ProcessGroup(std::move(store), rank, world_size, timeout, Links{}) {}
  ~ProcessGroup();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  /// In place: every tensor becomes the sum of the ranks' tensors (one coalesced collective per dtype).
  void allreduce_sum(std::vector<at::Tensor>& tensors);
  /// In place: every tensor becomes rank `root`'s.
  void broadcast(std::vector<at::Tensor>& tensors, int root = 0);
  /// True on every rank when `flag` is true on any (a stop request: Ctrl-C or SIGTERM that reached some ranks).
  bool any(bool flag);
  /// Every rank's 1-D tensor (any lengths, same dtype), in rank order.
  std::vector<at::Tensor> allgather(const at::Tensor& local);
  /// Checks that every rank passed the same `fingerprint` (of the config, say); mtl::Error naming `what` and the
  /// first rank that differs.
  void check_same(const std::string& fingerprint, const std::string& what);
  void barrier();
  /// Bytes this rank has put into collectives so far (its tensors' payload, not Gloo's framing or algorithm).
  int64_t payload_bytes() const { return payload_bytes_; }

 private:
  struct Gloo;  // the c10d::ProcessGroupGloo (its header stays out of this one)
  void wait(const std::string& op, const std::function<void()>& fn);  // a store operation
  void collective(const std::string& op, const std::function<c10::intrusive_ptr<c10d::Work>()>& start);
  [[noreturn]] void fail(const std::string& op, const std::string& what);
  /// After a failure: the other ranks whose beats stood still for a few seconds (rank 0 when the store it hosts is
  /// gone); empty when every other rank is alive.
  std::vector<int> stopped_ranks();
  void mark(const std::string& key);  // sets a flag key in the store; a store that is gone is no error here
  /// On the rank hosting the store: waits (a few beats at most) until every rank not in `stopped` has reported.
  void host_until_reported(const std::vector<int>& stopped);
  class Heartbeat;
  c10::intrusive_ptr<c10d::Store> store_;
  std::unique_ptr<Heartbeat> heartbeat_;
  bool store_on_rank0_ = false;
  std::unique_ptr<Gloo> gloo_;
  int rank_ = 0, world_size_ = 1;
  std::chrono::milliseconds timeout_;
  int64_t payload_bytes_ = 0;
};

}  // namespace mtl
