// The c10d process group; see process_group.h. Built with or without c10d: without it (or without the
// backend asked for) init_process_group is a DistributedError that says so.
#include <mdm/distributed/dist_error.h>
#include <mdm/distributed/process_group.h>

#include "c10d_compat.h"
#include "health_monitor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#if MDM_C10D_NCCL
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#include <unistd.h>
#endif
#if MDM_HAVE_C10D
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#endif

#include <algorithm>
#include <cstdlib>
#include <map>
#include <thread>

namespace mdm::distributed {
namespace {

// A c10d / Gloo error's message without the C++ backtrace LibTorch 1.13 appends, on one line.
std::string cause_of(const std::exception& e) {
  std::string what = e.what();
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) what = c10->what_without_backtrace();
  const size_t nl = what.find('\n');
  return nl == std::string::npos ? what : what.substr(0, nl);
}

std::string backends_text() {
  const auto b = available_backends();
  return b.empty() ? "none" : fmt::format("{}", fmt::join(b, ", "));
}

}  // namespace

bool c10d_available() { return MDM_HAVE_C10D != 0; }

std::vector<std::string> available_backends() {
  std::vector<std::string> out;
#if MDM_C10D_GLOO
  out.push_back("gloo");
#endif
#if MDM_C10D_NCCL
  out.push_back("nccl");
#endif
  return out;
}

torch::Device rank_device(const std::string& requested, const DistEnv& env) {
  torch::Device device(requested);
  if (device.is_cuda() && !device.has_index()) {
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (count == 1 && env.local_world_size > 1) {
      // A task bound to its own GPU (srun --gpus-per-task 1, CUDA_VISIBLE_DEVICES per rank) sees just that one.
      spdlog::info("LOCAL_RANK={}: one visible CUDA device, taken as this rank's own", env.local_rank);
      return torch::Device(torch::kCUDA, 0);
    }
    if (env.local_rank >= count) {
      throw DistributedError(fmt::format(
          "LOCAL_RANK={}: this node shows {} CUDA device(s) and a distributed run uses one GPU per local rank "
          "(start at most {} rank(s) per node, or pass --device cuda:N to choose one yourself)",
          env.local_rank, count, count));
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  }
  return device;
}

struct ProcessGroup::Impl {
  DistEnv env;
  std::string backend_name;
  torch::Device device{torch::kCPU};
  std::chrono::milliseconds timeout{0};
#if MDM_HAVE_C10D
  c10::intrusive_ptr<c10d_compat::Store> store;
  c10::intrusive_ptr<c10d_compat::Backend> backend;
  std::unique_ptr<HealthMonitor> monitor;

  // Waits for `work`; on failure reports it to the other ranks and throws the diagnosis.
  void wait(const c10::intrusive_ptr<::c10d::Work>& work, const std::string& operation) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      fail(operation, cause_of(e));
    }
  }
  [[noreturn]] void fail(const std::string& operation, const std::string& cause) {
    const std::string message = monitor->diagnose(operation, cause);
    monitor->report_failure(message);
    throw DistributedError(message);
  }
#endif
};

struct PendingReduce::Impl {
#if MDM_HAVE_C10D
  ProcessGroup::Impl* group = nullptr;
  c10::intrusive_ptr<::c10d::Work> work;
  std::vector<at::Tensor> tensors;  // kept alive while the collective runs
#endif
};

PendingReduce::PendingReduce() = default;
PendingReduce::PendingReduce(PendingReduce&&) noexcept = default;
PendingReduce& PendingReduce::operator=(PendingReduce&&) noexcept = default;
PendingReduce::~PendingReduce() = default;
bool PendingReduce::valid() const { return impl_ != nullptr; }

void PendingReduce::wait() {
  if (!impl_) return;
#if MDM_HAVE_C10D
  impl_->group->wait(impl_->work, "a gradient all-reduce");
#endif
  impl_.reset();
}

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;
int ProcessGroup::rank() const { return impl_->env.rank; }
int ProcessGroup::size() const { return impl_->env.world_size; }
const DistEnv& ProcessGroup::env() const { return impl_->env; }
const std::string& ProcessGroup::backend() const { return impl_->backend_name; }
torch::Device ProcessGroup::device() const { return impl_->device; }
std::chrono::milliseconds ProcessGroup::timeout() const { return impl_->timeout; }

#if MDM_HAVE_C10D

namespace {
::c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max:
      return ::c10d::ReduceOp::MAX;
    case ReduceOp::Min:
      return ::c10d::ReduceOp::MIN;
    case ReduceOp::Sum:
      break;
  }
  return ::c10d::ReduceOp::SUM;
}
}  // namespace

PendingReduce ProcessGroup::all_reduce_async(torch::Tensor tensor, ReduceOp op) {
  if (tensor.device() != impl_->device) {
    throw DistributedError(fmt::format("all-reduce: a tensor on {} but the {} group works on {}", tensor.device().str(),
                                       impl_->backend_name, impl_->device.str()));
  }
  PendingReduce pending;
  pending.impl_ = std::make_unique<PendingReduce::Impl>();
  pending.impl_->group = impl_.get();
  pending.impl_->tensors = {tensor};
  ::c10d::AllreduceOptions opts;
  opts.reduceOp = to_c10d(op);
  try {
    pending.impl_->work = impl_->backend->allreduce(pending.impl_->tensors, opts);
  } catch (const std::exception& e) {
    impl_->fail("starting an all-reduce", cause_of(e));
  }
  return pending;
}

void ProcessGroup::all_reduce(torch::Tensor tensor, ReduceOp op) {
  std::vector<at::Tensor> on_device = {tensor.to(impl_->device)};
  ::c10d::AllreduceOptions opts;
  opts.reduceOp = to_c10d(op);
  c10::intrusive_ptr<::c10d::Work> work;
  try {
    work = impl_->backend->allreduce(on_device, opts);
  } catch (const std::exception& e) {
    impl_->fail("starting an all-reduce", cause_of(e));
  }
  impl_->wait(work, "an all-reduce (step metrics, stop flag or checkpoint data)");
  if (!on_device[0].is_same(tensor)) tensor.copy_(on_device[0]);
}

void ProcessGroup::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  torch::NoGradGuard no_grad;
  // One collective per dtype: the tensors flattened into one buffer on the group's device.
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_type;
  for (const auto& t : tensors) {
    if (t.numel() > 0) by_type[t.scalar_type()].push_back(t);
  }
  for (auto& [type, group] : by_type) {
    std::vector<torch::Tensor> flat_parts;
    for (const auto& t : group) flat_parts.push_back(t.detach().reshape({-1}).to(impl_->device));
    std::vector<at::Tensor> buffer = {torch::cat(flat_parts)};
    ::c10d::BroadcastOptions opts;
    opts.rootRank = root;
    c10::intrusive_ptr<::c10d::Work> work;
    try {
      work = impl_->backend->broadcast(buffer, opts);
    } catch (const std::exception& e) {
      impl_->fail("starting a broadcast", cause_of(e));
    }
    impl_->wait(work, fmt::format("the broadcast of rank {}'s weights", root));
    int64_t offset = 0;
    for (auto& t : group) {
      t.detach().copy_(buffer[0].narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

void ProcessGroup::barrier(const std::string& what) {
  // An all-reduce of one element: the same on every backend, and on NCCL it needs no device guess.
  std::vector<at::Tensor> one = {torch::ones({1}, torch::TensorOptions().device(impl_->device))};
  c10::intrusive_ptr<::c10d::Work> work;
  try {
    work = impl_->backend->allreduce(one);
  } catch (const std::exception& e) {
    impl_->fail("a barrier (" + what + ")", cause_of(e));
  }
  impl_->wait(work, "the barrier at " + what);
}

void ProcessGroup::set_step(int64_t step) { impl_->monitor->set_step(step); }

std::string ProcessGroup::report_failure(const std::string& what) { return impl_->monitor->report_failure(what); }

std::string ProcessGroup::diagnose(const std::string& operation, const std::string& cause) {
  return impl_->monitor->diagnose(operation, cause);
}

namespace {

std::vector<std::string> join_keys(int size) {
  std::vector<std::string> keys;
  for (int r = 0; r < size; ++r) keys.push_back("mdm/joined/" + std::to_string(r));
  return keys;
}

// Every rank announces itself and waits for the others; a timeout names the ranks that never came.
void wait_for_ranks(c10d_compat::Store& store, const DistEnv& env, std::chrono::milliseconds timeout) {
  const auto keys = join_keys(env.world_size);
  store.set(keys[static_cast<size_t>(env.rank)], std::vector<uint8_t>{1});
  try {
    store.wait(keys, timeout);
  } catch (const std::exception& e) {
    std::vector<int> missing;
    for (int r = 0; r < env.world_size; ++r) {
      try {
        if (!store.check({keys[static_cast<size_t>(r)]})) missing.push_back(r);
      } catch (const std::exception&) {
        break;
      }
    }
    throw DistributedError(fmt::format(
        "rank {}: rank(s) {} of {} did not join the rendezvous at {}:{} within {} s (not started, or started with "
        "another MASTER_ADDR/MASTER_PORT) [{}]",
        env.rank, missing.empty() ? "?" : fmt::format("{}", fmt::join(missing, ", ")), env.world_size, env.master_addr,
        env.master_port, timeout.count() / 1000.0, cause_of(e)));
  }
}

bool is_loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0; }

#if MDM_C10D_NCCL
// "host PCI-address" of the GPU a rank drives: the same for two ranks on one GPU whatever their
// CUDA_VISIBLE_DEVICES make of its index.
std::string gpu_identity(c10::DeviceIndex index) {
  const cudaDeviceProp* p = at::cuda::getDeviceProperties(index);
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '?';
  return fmt::format("{} {:04x}:{:02x}:{:02x}", host, p->pciDomainID, p->pciBusID, p->pciDeviceID);
}

// Every rank publishes its GPU and reads everyone's; two ranks on one GPU stop every rank here, with the
// same message, instead of NCCL's "invalid usage" at the first collective (the GPU run, NCCL 2.28).
void check_one_gpu_per_rank(c10d_compat::Store& store, const DistEnv& env, c10::DeviceIndex index,
                            std::chrono::milliseconds timeout) {
  const std::string mine = gpu_identity(index);
  std::vector<std::string> keys;
  for (int r = 0; r < env.world_size; ++r) keys.push_back("mdm/gpu/" + std::to_string(r));
  store.set(keys[static_cast<size_t>(env.rank)], std::vector<uint8_t>(mine.begin(), mine.end()));
  std::vector<std::string> gpus;
  try {
    store.wait(keys, timeout);
    for (const auto& key : keys) {
      const auto v = store.get(key);
      gpus.emplace_back(v.begin(), v.end());
    }
  } catch (const std::exception& e) {
    throw DistributedError(fmt::format("rank {}: the ranks' GPUs did not all arrive in the store within {} s [{}]",
                                       env.rank, timeout.count() / 1000.0, cause_of(e)));
  }
  const std::string shared = describe_shared_gpus(gpus);
  if (!shared.empty()) throw DistributedError(fmt::format("rank {} (cuda:{}): {}", env.rank, index, shared));
}
#endif

}  // namespace

std::string describe_shared_gpus(const std::vector<std::string>& gpu_of_rank) {
  std::vector<std::pair<std::string, std::vector<int>>> groups;  // in the order of each GPU's first rank
  for (size_t r = 0; r < gpu_of_rank.size(); ++r) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == gpu_of_rank[r]; });
    if (it == groups.end()) it = groups.insert(groups.end(), {gpu_of_rank[r], {}});
    it->second.push_back(static_cast<int>(r));
  }
  std::vector<std::string> shared;
  for (const auto& [gpu, ranks] : groups) {
    if (ranks.size() < 2) continue;
    const std::vector<int> head(ranks.begin(), ranks.end() - 1);
    shared.push_back(fmt::format("ranks {} and {} share the GPU {}", fmt::join(head, ", "), ranks.back(), gpu));
  }
  if (shared.empty()) return "";
  return fmt::format(
      "NCCL runs one rank per GPU, and {} (host, PCI address): give each rank its own GPU (--device cuda puts "
      "local rank N on cuda:N; start at most as many ranks per node as it has GPUs)",
      fmt::join(shared, "; "));
}

std::shared_ptr<ProcessGroup> init_process_group(const DistEnv& env, torch::Device device,
                                                 const GroupOptions& options) {
  auto impl = std::make_unique<ProcessGroup::Impl>();
  impl->env = env;
  impl->device = device;
  impl->timeout = options.timeout;
  impl->backend_name = !options.backend.empty() ? options.backend : device.is_cuda() ? "nccl" : "gloo";
  const auto backends = available_backends();
  if (std::find(backends.begin(), backends.end(), impl->backend_name) == backends.end()) {
    throw DistributedError(fmt::format(
        "the {} backend is not in this build of libmdm (c10d backends found at configure time: {}); {} needs it",
        impl->backend_name, backends_text(), device.is_cuda() ? "a CUDA run" : "a CPU run"));
  }
  if (impl->backend_name == "nccl" && !device.is_cuda()) {
    throw DistributedError(fmt::format("the nccl backend needs a CUDA device, not {}", device.str()));
  }
  const std::string addr = fmt::format("{}:{}", env.master_addr, env.master_port);
  const auto make_store = [&](bool server) -> c10::intrusive_ptr<c10d_compat::Store> {
    try {
      auto store = c10d_compat::make_tcp_store(env.master_addr, env.master_port, server, options.timeout);
      if (env.store_prefix.empty()) return store;
      return c10::make_intrusive<::c10d::PrefixStore>(env.store_prefix, store);
    } catch (const std::exception& e) {
      throw DistributedError(fmt::format(
          "rank {}: {} the rendezvous store at {} within {} s (MASTER_ADDR / MASTER_PORT, from {}) [{}]", env.rank,
          server ? "cannot serve" : "cannot reach", addr, options.timeout.count() / 1000.0, env.launcher, cause_of(e)));
    }
  };
  impl->store = make_store(env.rank == 0 && !env.agent_store);
  wait_for_ranks(*impl->store, env, options.timeout);

  HealthMonitor::Options mo;
  mo.rank = env.rank;
  mo.size = env.world_size;
  mo.store_addr = addr;
  mo.timeout = options.timeout;
  mo.exit_on_peer_failure = options.exit_on_peer_failure;
  mo.interval = options.heartbeat.count() > 0
                    ? options.heartbeat
                    : std::clamp(options.timeout / 10, std::chrono::milliseconds(100), std::chrono::milliseconds(5000));
  impl->monitor = std::make_unique<HealthMonitor>(make_store(false), impl->store, mo);

#if MDM_C10D_NCCL
  if (impl->backend_name == "nccl" && env.world_size > 1) {
    check_one_gpu_per_rank(*impl->store, env, device.has_index() ? device.index() : c10::cuda::current_device(),
                           options.timeout);
  }
#endif
  auto backend_store = c10::make_intrusive<::c10d::PrefixStore>("mdm/" + impl->backend_name, impl->store);
  try {
#if MDM_C10D_NCCL
    if (impl->backend_name == "nccl") {
      c10::cuda::set_device(device.index());
      impl->backend = c10d_compat::make_nccl(backend_store, env.rank, env.world_size, options.timeout);
    }
#endif
#if MDM_C10D_GLOO
    if (impl->backend_name == "gloo") {
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      impl->backend = c10d_compat::make_gloo(backend_store, env.rank, env.world_size, options.timeout,
                                             ifname ? ifname : "", is_loopback(env.master_addr));
    }
#endif
  } catch (const std::exception& e) {
    impl->fail("building the " + impl->backend_name + " process group", cause_of(e));
  }
  spdlog::info("distributed: {}, backend {} on {}, timeout {} s", env.describe(), impl->backend_name, device.str(),
               options.timeout.count() / 1000.0);
  return std::shared_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

#else  // no c10d in this build

namespace {
[[noreturn]] void no_c10d() {
  throw DistributedError(
      "this build of libmdm has no c10d (the LibTorch it was configured with lacks "
      "torch/csrc/distributed/c10d, or the Gloo headers were not found: install libgloo-dev and reconfigure); a "
      "distributed run (WORLD_SIZE > 1) needs it");
}
}  // namespace

PendingReduce ProcessGroup::all_reduce_async(torch::Tensor, ReduceOp) { no_c10d(); }
void ProcessGroup::all_reduce(torch::Tensor, ReduceOp) { no_c10d(); }
void ProcessGroup::broadcast(const std::vector<torch::Tensor>&, int) { no_c10d(); }
void ProcessGroup::barrier(const std::string&) { no_c10d(); }
void ProcessGroup::set_step(int64_t) {}
std::string ProcessGroup::report_failure(const std::string& what) { return what; }
std::string ProcessGroup::diagnose(const std::string&, const std::string& cause) { return cause; }
std::shared_ptr<ProcessGroup> init_process_group(const DistEnv&, torch::Device, const GroupOptions&) { no_c10d(); }

#endif

}  // namespace mdm::distributed
