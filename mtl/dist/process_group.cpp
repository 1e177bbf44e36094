#include "mtl/dist/process_group.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <map>
#include <sstream>

#include "mtl/core/error.h"

namespace mtl {

namespace {

constexpr const char* kWhere = "distributed";

// The first line of a c10d/Gloo message (they append C++ stack traces).
std::string first_line(const std::string& what) {
  const size_t end = what.find('\n');
  return end == std::string::npos ? what : what.substr(0, end);
}

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
  if (env.agent_store)  // torchrun's agent keys each restart's rendezvous under its attempt number
    store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(env.restart_count), store);
  store = c10::make_intrusive<c10d::PrefixStore>("mtl", store);
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
    return std::make_shared<ProcessGroup>(store, env.rank, env.world_size, timeout);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(kWhere, "rank " + std::to_string(env.rank) + ": the Gloo process group of " +
                            std::to_string(env.world_size) + " ranks did not form within " +
                            std::to_string(int(options.timeout_s)) + " s: " + first_line(e.what()));
  }
}

ProcessGroup::ProcessGroup(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
                           std::chrono::milliseconds timeout)
    : store_(std::move(store)), rank_(rank), world_size_(world_size), timeout_(timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  const char* addr = std::getenv("MASTER_ADDR");
  options->devices.push_back(gloo_device(addr && *addr ? addr : "127.0.0.1"));
  options->threads = 2;
  gloo_ = std::make_unique<Gloo>();
  gloo_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank, world_size, options);
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::wait(const std::string& op, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    throw Error(kWhere, "rank " + std::to_string(rank_) + " of " + std::to_string(world_size_) + ": " + op +
                            " failed (another rank stopped, or was more than " +
                            std::to_string(timeout_.count() / 1000) + " s late): " + first_line(e.what()));
  }
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
    wait("allreduce", [&] { gloo_->group->allreduce(buffer)->wait(timeout_); });
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
    c10d::BroadcastOptions o;
    o.rootRank = root;
    wait("broadcast", [&] { gloo_->group->broadcast(one, o)->wait(timeout_); });
    if (one[0].data_ptr() != t.data_ptr()) t.copy_(one[0]);
  }
}

std::vector<at::Tensor> ProcessGroup::allgather(const at::Tensor& local) {
  TORCH_CHECK(local.dim() == 1, "allgather: a 1-D tensor, got ", local.sizes());
  std::vector<at::Tensor> count{at::full({1}, local.numel(), at::kLong)};
  std::vector<std::vector<at::Tensor>> counts(1);
  for (int r = 0; r < world_size_; ++r) counts[0].push_back(at::empty({1}, at::kLong));
  wait("allgather", [&] { gloo_->group->allgather(counts, count)->wait(timeout_); });
  int64_t longest = 0;
  std::vector<int64_t> n;
  for (const auto& c : counts[0]) {
    n.push_back(c.item<int64_t>());
    longest = std::max(longest, n.back());
  }
  // Gloo gathers equal lengths: pad to the longest, then cut each rank's part back to its length.
  std::vector<at::Tensor> in{at::zeros({longest}, local.options())};
  if (local.numel() > 0) in[0].narrow(0, 0, local.numel()).copy_(local);
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < world_size_; ++r) out[0].push_back(at::empty({longest}, local.options()));
  if (longest > 0) wait("allgather", [&] { gloo_->group->allgather(out, in)->wait(timeout_); });
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
  wait("barrier", [&] { gloo_->group->barrier()->wait(timeout_); });
}

}  // namespace mtl
