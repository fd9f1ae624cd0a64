// Where this process stands in a distributed run, read from the launcher's environment: torchrun's
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or SLURM's (SLURM_PROCID,
// SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE, the first host of SLURM_JOB_NODELIST). torchrun's
// variables win when both are set (torchrun started inside an sbatch allocation).
#pragma once

#include <mdm/distributed/dist_error.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace mdm::distributed {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";  // where rank 0 serves the rendezvous store (TCPStore)
  int master_port = 29500;
  std::string launcher = "none";  // none | torchrun | slurm: which variables these came from
  // torchrun's agent already serves the store at MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True):
  // every rank, rank 0 too, connects as a client, under the prefix of this restart ("/worker/attempt_N",
  // from TORCHELASTIC_RESTART_COUNT), as torch.distributed does.
  bool agent_store = false;
  std::string store_prefix;

  bool distributed() const { return world_size > 1; }
  // "rank 3 of 8 (local 3 of 8, torchrun), store 10.0.0.1:29500"
  std::string describe() const;
};

// Looks up one environment variable (std::nullopt when unset); tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_environment();

// Parses the launch environment. With neither torchrun's nor SLURM's variables set: one process, rank 0.
// Throws mdm::DistributedError naming the variable and its value when one is malformed or inconsistent
// (RANK=8 with WORLD_SIZE=8, a missing MASTER_ADDR, a port outside 1..65535, ...).
DistEnv parse_dist_env(const EnvLookup& env = process_environment());

// The first host of a SLURM host list: "gpu[007-010,012],login1" → "gpu007"; "a[1-2]-b[3-4]" → "a1-b3".
// Throws mdm::DistributedError (naming SLURM_JOB_NODELIST) on an unbalanced bracket or an empty list.
std::string first_slurm_host(const std::string& nodelist);

// The rendezvous port of a SLURM job without MASTER_PORT: 15000 + SLURM_JOB_ID mod 20000, so two jobs on
// the same nodes rarely collide (set MASTER_PORT to choose it).
int slurm_default_port(int64_t job_id);

}  // namespace mdm::distributed
