#include "mtl/dist/process_group.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <map>
#include <sstream>

#include "mtl/core/error.h"
#include "mtl/core/text.h"

namespace mtl {

namespace {

constexpr const char* kWhere = "distributed";

int env_int(const std::function<const char*(const char*)>& get, const char* name, int fallback, int lo, int hi) {
  const char* raw = get(name);
  if (!raw || !*raw) return fallback;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(raw, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi)
    throw Error(std::string("environment variable ") + name,
                "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + raw + "'");
  return static_cast<int>(v);
}

bool env_flag(const std::function<const char*(const char*)>& get, const char* name) {
  const char* raw = get(name);
  if (!raw) return false;
  const std::string v = raw;
  return v == "1" || v == "True" || v == "true" || v == "TRUE" || v == "yes";
}

// Liveness beats (ProcessGroup::Heartbeat): one counter per rank in the store.
constexpr std::chrono::milliseconds kBeat(1000);
std::string beat_key(int rank) { return "beat/" + std::to_string(rank); }
const std::string kDownKey = "down";  // the first verdict on which ranks stopped (ProcessGroup::fail)
// Set by a rank that saw a collective fail and is about to end on its own (alive, so never to be named as stopped
// when its beats end with its exit), and by a rank once it has reached its verdict (the store's host waits for it).
std::string gave_up_key(int rank) { return "gave_up/" + std::to_string(rank); }
std::string reported_key(int rank) { return "reported/" + std::to_string(rank); }
void set_flag(c10d::Store& store, const std::string& key) { store.set(key, std::vector<uint8_t>{1}); }

// True when nothing can listen on `port` of every IPv4 interface (TCPStore's server binds there).
bool port_in_use(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as TCPStore does: TIME_WAIT is no obstacle
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = htons(port);
  const bool taken = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 && errno == EADDRINUSE;
  close(fd);
  return taken;
}

bool loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  // On one machine the loopback interface always works, whatever the hostname resolves to.
  if (loopback(master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

struct ProcessGroup::Gloo {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

LaunchEnv read_launch_env(const std::function<const char*(const char*)>& getenv) {
  const auto get = getenv ? getenv : [](const char* name) -> const char* { return std::getenv(name); };
  LaunchEnv e;
  e.world_size = env_int(get, "WORLD_SIZE", 1, 1, 1 << 20);
  e.rank = env_int(get, "RANK", 0, 0, 1 << 20);
  if (e.rank >= e.world_size)
    throw Error("environment variable RANK", "expected a rank in [0, WORLD_SIZE=" + std::to_string(e.world_size) +
                                                 "), got " + std::to_string(e.rank));
  e.local_world_size = env_int(get, "LOCAL_WORLD_SIZE", e.world_size, 1, 1 << 20);
  e.local_rank = env_int(get, "LOCAL_RANK", e.rank % e.local_world_size, 0, 1 << 20);
  if (e.local_rank >= e.local_world_size)
    throw Error("environment variable LOCAL_RANK",
                "expected a rank in [0, LOCAL_WORLD_SIZE=" + std::to_string(e.local_world_size) + "), got " +
                    std::to_string(e.local_rank));
  if (const char* addr = get("MASTER_ADDR"); addr && *addr) e.master_addr = addr;
  e.master_port = env_int(get, "MASTER_PORT", e.master_port, 1, 65535);
  e.agent_store = env_flag(get, "TORCHELASTIC_USE_AGENT_STORE");
  e.restart_count = env_int(get, "TORCHELASTIC_RESTART_COUNT", 0, 0, 1 << 20);
  if (e.distributed() && (!get("MASTER_ADDR") || !get("MASTER_PORT")))
    throw Error("environment variable " + std::string(get("MASTER_ADDR") ? "MASTER_PORT" : "MASTER_ADDR"),
                "is not set; a run with WORLD_SIZE=" + std::to_string(e.world_size) +
                    " needs MASTER_ADDR and MASTER_PORT (torchrun sets them)");
  return e;
}

std::shared_ptr<ProcessGroup> ProcessGroup::connect(const LaunchEnv& env, const DistributedOptions& options) {
  if (!env.distributed()) return nullptr;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000));
  const std::string endpoint = env.master_addr + ":" + std::to_string(env.master_port);
  c10::intrusive_ptr<c10d::Store> store;
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = !env.agent_store && env.rank == 0;
  so.numWorkers = env.agent_store ? c10::nullopt : c10::optional<std::size_t>(env.world_size);
  so.waitWorkers = false;  // the process group's own handshake waits for every rank
  so.timeout = timeout;
  so.multiTenant = true;
  // A port in use: said here in one line (c10d would also log its own lines about each address it tried).
  if (so.isServer && port_in_use(so.port))
    throw Error("MASTER_PORT=" + std::to_string(env.master_port),
                "rank 0 cannot host the rendezvous store at " + endpoint +
                    ": the port is in use by another program (pick another MASTER_PORT)");
  try {
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    const std::string what = first_line(e.what());
    if (so.isServer)
      throw Error("MASTER_PORT=" + std::to_string(env.master_port),
                  "rank 0 cannot host the rendezvous store at " + endpoint + ": " + what +
                      " (is the port in use? pick another MASTER_PORT)");
    throw Error("MASTER_ADDR=" + env.master_addr, "rank " + std::to_string(env.rank) + " cannot reach the rendezvous store at " +
                                                      endpoint + " within " + std::to_string(int(options.timeout_s)) +
                                                      " s: " + what);
  }
  // The liveness beats go through a connection of their own (mtl/dist/process_group.h, Links::beat_store).
  c10::intrusive_ptr<c10d::Store> beat_store;
  try {
    c10d::TCPStoreOptions client = so;
    client.isServer = false;
    client.numWorkers = c10::nullopt;
    beat_store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, client);
  } catch (const std::exception& e) {
    throw Error("MASTER_ADDR=" + env.master_addr, "rank " + std::to_string(env.rank) +
                                                      " lost the rendezvous store at " + endpoint + ": " +
                                                      first_line(e.what()));
  }
  auto scoped = [&](c10::intrusive_ptr<c10d::Store> s) -> c10::intrusive_ptr<c10d::Store> {
    if (env.agent_store)  // torchrun's agent keys each restart's rendezvous under its attempt number
      s = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(env.restart_count), s);
    return c10::make_intrusive<c10d::PrefixStore>("mtl", s);
  };
  store = scoped(store);
  Links links;
  links.gloo_host = env.master_addr;
  links.beat_store = scoped(beat_store);
  links.store_on_rank0 = !env.agent_store;
  // Every rank must agree on the world size before the group's handshake (which would wait for absent ranks).
  const std::string key = "world_size";
  if (env.rank == 0) {
    const std::string v = std::to_string(env.world_size);
    store->set(key, std::vector<uint8_t>(v.begin(), v.end()));
  }
  std::string theirs;
  try {
    const std::vector<uint8_t> raw = store->get(key);
    theirs.assign(raw.begin(), raw.end());
  } catch (const std::exception& e) {
    throw Error(kWhere, "rank " + std::to_string(env.rank) + ": rank 0 did not join the rendezvous at " + endpoint +
                            " within " + std::to_string(int(options.timeout_s)) + " s: " + first_line(e.what()));
  }
  if (theirs != std::to_string(env.world_size))
    throw Error("environment variable WORLD_SIZE", "rank " + std::to_string(env.rank) + " has WORLD_SIZE=" +
                                                       std::to_string(env.world_size) + " but rank 0 has " + theirs);
  try {
    return std::make_shared<ProcessGroup>(store, env.rank, env.world_size, timeout, links);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(kWhere, "rank " + std::to_string(env.rank) + ": the Gloo process group of " +
                            std::to_string(env.world_size) + " ranks did not form within " +
                            std::to_string(int(options.timeout_s)) + " s: " + first_line(e.what()));
  }
}

// Bumps this rank's counter "beat/<rank>" in the store every kBeat until destroyed; a store that stops
// answering ends the beats (the failure shows in the collectives).
class ProcessGroup::Heartbeat {
 public:
  Heartbeat(c10::intrusive_ptr<c10d::Store> store, int rank) : store_(std::move(store)), rank_(rank) {
    thread_ = std::thread([this] { run(); });
  }
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    while (true) {
      try {
        store_->add(beat_key(rank_), 1);
      } catch (const std::exception&) {
        return;
      }
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, kBeat, [this] { return stop_; })) return;
    }
  }
  c10::intrusive_ptr<c10d::Store> store_;
  int rank_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

ProcessGroup::ProcessGroup(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
                           std::chrono::milliseconds timeout, Links links)
    : store_(std::move(store)), rank_(rank), world_size_(world_size), timeout_(timeout) {
  store_on_rank0_ = links.store_on_rank0;
  heartbeat_ = std::make_unique<Heartbeat>(links.beat_store ? links.beat_store : store_, rank);
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(gloo_device(links.gloo_host));
  options->threads = 2;
  gloo_ = std::make_unique<Gloo>();
  gloo_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank, world_size, options);
}

ProcessGroup::~ProcessGroup() = default;

std::vector<int> ProcessGroup::stopped_ranks() {
  auto beats = [&] {
    std::vector<int64_t> v;
    for (int r = 0; r < world_size_; ++r) v.push_back(store_->add(beat_key(r), 0));
    return v;
  };
  std::vector<int64_t> before, after;
  try {
    before = beats();
    std::this_thread::sleep_for(3 * kBeat);
    after = beats();
  } catch (const std::exception&) {
    return store_on_rank0_ && rank_ != 0 ? std::vector<int>{0} : std::vector<int>{};
  }
  std::vector<int> stopped;
  try {
    for (int r = 0; r < world_size_; ++r)
      if (r != rank_ && after[r] == before[r] && !store_->check({gave_up_key(r)})) stopped.push_back(r);
  } catch (const std::exception&) {
    return store_on_rank0_ && rank_ != 0 ? std::vector<int>{0} : std::vector<int>{};
  }
  return stopped;
}

void ProcessGroup::mark(const std::string& key) {
  try {
    set_flag(*store_, key);
  } catch (const std::exception&) {
  }
}

void ProcessGroup::host_until_reported(const std::vector<int>& stopped) {
  if (!store_on_rank0_ || rank_ != 0) return;
  const auto deadline = std::chrono::steady_clock::now() + 5 * kBeat;
  for (int r = 1; r < world_size_; ++r) {
    if (std::find(stopped.begin(), stopped.end(), r) != stopped.end()) continue;
    try {
      while (!store_->check({reported_key(r)}) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(kBeat / 10);
    } catch (const std::exception&) {
      return;
    }
  }
}

void ProcessGroup::wait(const std::string& op, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    fail(op, first_line(e.what()));
  }
}

// Waits in steps of one beat, so that a verdict another rank reached ("down": which ranks stopped) ends this
// rank's wait too, even when its own peers are alive and only waiting like itself.
void ProcessGroup::collective(const std::string& op, const std::function<c10::intrusive_ptr<c10d::Work>()>& start) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = start();
  } catch (const std::exception& e) {
    fail(op, first_line(e.what()));
  }
  while (true) {
    try {
      work->wait(kBeat);
      return;
    } catch (const std::exception& e) {
      if (work->isCompleted() || std::chrono::steady_clock::now() >= deadline) fail(op, first_line(e.what()));
    }
    std::string verdict;
    try {
      if (store_->check({kDownKey})) {
        const std::vector<uint8_t> raw = store_->get(kDownKey);
        verdict.assign(raw.begin(), raw.end());
      }
    } catch (const std::exception&) {
      fail(op, "the rendezvous store stopped answering");
    }
    if (!verdict.empty()) {
      mark(reported_key(rank_));
      host_until_reported({});
      throw Error(kWhere, "rank " + std::to_string(rank_) + " of " + std::to_string(world_size_) + ": " + verdict +
                              " (" + op + " stopped)");
    }
  }
}

void ProcessGroup::fail(const std::string& op, const std::string& what) {
  const std::string me = "rank " + std::to_string(rank_) + " of " + std::to_string(world_size_) + ": ";
  mark(gave_up_key(rank_));
  const std::vector<int> stopped = stopped_ranks();
  mark(reported_key(rank_));
  if (stopped.empty()) {
    host_until_reported(stopped);
    throw Error(kWhere, me + op + " failed (another rank stopped, or was more than " +
                            std::to_string(timeout_.count() / 1000) + " s late): " + what);
  }
  std::string who = stopped.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < stopped.size(); ++i)
    who += (i == 0 ? "" : i + 1 == stopped.size() ? " and " : ", ") + std::to_string(stopped[i]);
  if (store_on_rank0_ && stopped.front() == 0) who += " (it hosts the rendezvous store)";
  // Tell the ranks still waiting (if any).
  const bool others_wait = static_cast<int>(stopped.size()) + 1 < world_size_;
  const bool store_alive = !(store_on_rank0_ && stopped.front() == 0);
  if (others_wait && store_alive) {
    const std::string verdict = who + " stopped answering (killed or hung; seen by rank " + std::to_string(rank_) + ")";
    try {
      store_->set(kDownKey, std::vector<uint8_t>(verdict.begin(), verdict.end()));
    } catch (const std::exception&) {
    }
  }
  // The store's host stays up until every live rank has its verdict (or a few beats).
  if (store_alive) host_until_reported(stopped);
  throw Error(kWhere, me + who + " stopped answering (killed or hung; " + op + " failed: " + what + ")");
}

void ProcessGroup::allreduce_sum(std::vector<at::Tensor>& tensors) {
  // One flat buffer per dtype: one collective instead of one per tensor.
  std::map<at::ScalarType, std::vector<size_t>> by_type;
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].defined() && tensors[i].numel() > 0) by_type[tensors[i].scalar_type()].push_back(i);
  for (auto& [type, idx] : by_type) {
    std::vector<at::Tensor> flat;
    for (size_t i : idx) flat.push_back(tensors[i].reshape(-1));
    std::vector<at::Tensor> buffer{flat.size() == 1 ? flat[0].contiguous() : at::cat(flat)};
    payload_bytes_ += buffer[0].numel() * static_cast<int64_t>(buffer[0].element_size());
    collective("allreduce", [&] { return gloo_->group->allreduce(buffer); });
    int64_t pos = 0;
    for (size_t i : idx) {
      const int64_t n = tensors[i].numel();
      if (buffer[0].data_ptr() != tensors[i].data_ptr())
        tensors[i].copy_(buffer[0].narrow(0, pos, n).view(tensors[i].sizes()));
      pos += n;
    }
  }
}

void ProcessGroup::broadcast(std::vector<at::Tensor>& tensors, int root) {
  for (auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    std::vector<at::Tensor> one{t.is_contiguous() ? t : t.contiguous()};
    if (rank_ == root) payload_bytes_ += t.numel() * static_cast<int64_t>(t.element_size());
    c10d::BroadcastOptions o;
    o.rootRank = root;
    collective("broadcast", [&] { return gloo_->group->broadcast(one, o); });
    if (one[0].data_ptr() != t.data_ptr()) t.copy_(one[0]);
  }
}

bool ProcessGroup::any(bool flag) {
  std::vector<at::Tensor> t{at::full({1}, flag ? 1 : 0, at::kInt)};
  allreduce_sum(t);
  return t[0].item<int>() > 0;
}

std::vector<at::Tensor> ProcessGroup::allgather(const at::Tensor& local) {
  TORCH_CHECK(local.dim() == 1, "allgather: a 1-D tensor, got ", local.sizes());
  std::vector<at::Tensor> count{at::full({1}, local.numel(), at::kLong)};
  std::vector<std::vector<at::Tensor>> counts(1);
  for (int r = 0; r < world_size_; ++r) counts[0].push_back(at::empty({1}, at::kLong));
  collective("allgather", [&] { return gloo_->group->allgather(counts, count); });
  int64_t longest = 0;
  std::vector<int64_t> n;
  for (const auto& c : counts[0]) {
    n.push_back(c.item<int64_t>());
    longest = std::max(longest, n.back());
  }
  // Gloo gathers equal lengths: pad to the longest, then cut each rank's part back to its length.
  std::vector<at::Tensor> in{at::zeros({longest}, local.options())};
  payload_bytes_ += 8 + longest * static_cast<int64_t>(local.element_size());
  if (local.numel() > 0) in[0].narrow(0, 0, local.numel()).copy_(local);
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < world_size_; ++r) out[0].push_back(at::empty({longest}, local.options()));
  if (longest > 0) collective("allgather", [&] { return gloo_->group->allgather(out, in); });
  std::vector<at::Tensor> parts;
  for (int r = 0; r < world_size_; ++r) parts.push_back(out[0][r].narrow(0, 0, n[r]));
  return parts;
}

void ProcessGroup::check_same(const std::string& fingerprint, const std::string& what) {
  const std::string prefix = "check/" + what + "/";
  wait("store set", [&] {
    store_->set(prefix + std::to_string(rank_), std::vector<uint8_t>(fingerprint.begin(), fingerprint.end()));
  });
  for (int r = 0; r < world_size_; ++r) {
    std::vector<uint8_t> raw;
    wait("store get", [&] { raw = store_->get(prefix + std::to_string(r)); });
    if (std::string(raw.begin(), raw.end()) != fingerprint)
      throw Error(kWhere, "rank " + std::to_string(rank_) + " and rank " + std::to_string(r) + " have different " +
                              what + " (every rank must run the same config and data)");
  }
}

void ProcessGroup::barrier() {
  collective("barrier", [&] { return gloo_->group->barrier(); });
}

}  // namespace mtl
