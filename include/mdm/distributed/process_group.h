// A c10d process group for data-parallel training: a TCPStore served by rank 0, ProcessGroupNCCL on CUDA
// and ProcessGroupGloo on the CPU (PyTorch's own collectives; there is no C++ DistributedDataParallel, so
// libmdm builds the part a trainer needs on them). This header names no c10d type: what LibTorch ships is
// detected at configure time (cmake/MdmDependencies.cmake) and only src/distributed/ includes c10d.
//
// Failure behaviour: every rank runs a health monitor (a heartbeat in the store). A collective that fails
// or times out throws mdm::DistributedError naming the rank at fault and why (died, hung, reported an
// error, store unreachable); a rank blocked in a collective while another rank reports a failure ends its
// process with exit code 1 after printing the reason, because a Gloo collective cannot be interrupted.
#pragma once

#include <mdm/distributed/dist_env.h>
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace mdm::distributed {

enum class ReduceOp { Sum, Max, Min };

// Whether this build of libmdm has c10d, and with which backends ("gloo", "nccl").
bool c10d_available();
std::vector<std::string> available_backends();

struct GroupOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};  // store connect, rendezvous and every collective
  std::string backend;                                          // "" = nccl for a CUDA device, gloo for the CPU
  // The health monitor's heartbeat period; 0 = timeout / 10, clamped to [0.1 s, 5 s].
  std::chrono::milliseconds heartbeat{0};
  // When another rank reports a failure while this one is blocked, end this process (exit code 1) after
  // printing why. Off: only the failing collective's own error (after its timeout) reports it.
  bool exit_on_peer_failure = true;
};

class ProcessGroup;

// An all-reduce in flight (the gradient bucketer keeps several while backward runs).
class PendingReduce {
 public:
  PendingReduce();
  PendingReduce(PendingReduce&&) noexcept;
  PendingReduce& operator=(PendingReduce&&) noexcept;
  ~PendingReduce();
  bool valid() const;
  // Blocks until done; on failure throws mdm::DistributedError with the group's diagnosis.
  void wait();

 private:
  friend class ProcessGroup;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ProcessGroup {
 public:
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;
  const DistEnv& env() const;
  const std::string& backend() const;  // "gloo" | "nccl"
  torch::Device device() const;        // where collective tensors must live
  std::chrono::milliseconds timeout() const;

  // In-place all-reduce of a dense tensor on device(); async returns at once (the tensor must not be
  // touched until wait()).
  PendingReduce all_reduce_async(torch::Tensor tensor, ReduceOp op = ReduceOp::Sum);
  void all_reduce(torch::Tensor tensor, ReduceOp op = ReduceOp::Sum);
  // Every tensor (any device: copied through device() when needed) gets rank `root`'s values.
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  // Every rank waits here; `what` names the point in errors ("checkpoint of step 1200").
  void barrier(const std::string& what);

  // The step this rank is at, reported in heartbeats (and so in another rank's diagnosis of this one).
  void set_step(int64_t step);
  // Reports this rank's failure to the others (they print it and stop) and returns the message to throw.
  // Rank 0 waits briefly for the others to read it, since the store lives in its process.
  std::string report_failure(const std::string& what);
  // Why a collective failed: which ranks stopped answering, which reported an error, or that the store is
  // gone. Used by the collectives themselves; public for code that runs its own c10d calls.
  std::string diagnose(const std::string& operation, const std::string& cause);

  struct Impl;

 private:
  friend std::shared_ptr<ProcessGroup> init_process_group(const DistEnv&, torch::Device, const GroupOptions&);
  friend class PendingReduce;
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Connects to (rank 0: serves) the TCPStore at env.master_addr:master_port, waits for every rank (an error
// names the ranks missing after options.timeout), then builds the backend: NCCL when `device` is CUDA
// (one GPU per local rank: pass cuda:LOCAL_RANK), Gloo on the CPU. Throws mdm::DistributedError when this
// build has no c10d or not the backend asked for, when the store is unreachable, when a rank is missing, or
// when two NCCL ranks share a GPU (describe_shared_gpus).
std::shared_ptr<ProcessGroup> init_process_group(const DistEnv& env, torch::Device device,
                                                 const GroupOptions& options = {});

// The device of a rank: "cuda" → cuda:LOCAL_RANK (an error when this node has fewer GPUs than local
// ranks), "cuda:N" and "cpu" as given.
torch::Device rank_device(const std::string& requested, const DistEnv& env);

// NCCL runs one rank per GPU: two ranks on one device fail at their first collective with NCCL's bare
// "invalid usage". So before NCCL starts, every rank publishes which GPU it drives (its host and the GPU's
// PCI address) and init_process_group stops on all ranks at once when two share one. This is that check:
// gpu_of_rank[r] is rank r's "host PCI-address"; "" when every rank has its own GPU, else a message
// naming the ranks and the GPU they share.
std::string describe_shared_gpus(const std::vector<std::string>& gpu_of_rank);

}  // namespace mdm::distributed
