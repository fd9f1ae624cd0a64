// The launch environment; see dist_env.h.
#include <mdm/distributed/dist_env.h>
#include <mdm/distributed/dist_error.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

namespace mdm::distributed {
namespace {

// The value of a variable that must be an integer in [lo, hi]; names the variable and the value when not.
int64_t parse_int(const std::string& name, const std::string& value, int64_t lo, int64_t hi) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || end != value.c_str() + value.size() || errno == ERANGE) {
    throw DistributedError(fmt::format("{}={} is not an integer", name, value));
  }
  if (v < lo || v > hi) throw DistributedError(fmt::format("{}={} is outside [{}, {}]", name, value, lo, hi));
  return v;
}

std::optional<int64_t> int_var(const EnvLookup& env, const std::string& name, int64_t lo, int64_t hi) {
  const auto value = env(name);
  if (!value) return std::nullopt;
  return parse_int(name, *value, lo, hi);
}

int64_t required_int(const EnvLookup& env, const std::string& name, int64_t lo, int64_t hi, const std::string& why) {
  const auto v = int_var(env, name, lo, hi);
  if (!v) throw DistributedError(fmt::format("{} is not set ({})", name, why));
  return *v;
}

// SLURM_TASKS_PER_NODE ("2(x3),1": two tasks on each of three nodes, then one) → the count of node `node`.
std::optional<int64_t> tasks_on_node(const std::string& spec, int64_t node) {
  int64_t seen = 0;
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(pos, comma - pos);
    const size_t paren = item.find("(x");
    const int64_t count = parse_int("SLURM_TASKS_PER_NODE", item.substr(0, paren), 1, 1 << 20);
    int64_t repeat = 1;
    if (paren != std::string::npos) {
      if (item.back() != ')') throw DistributedError(fmt::format("SLURM_TASKS_PER_NODE={} is malformed", spec));
      repeat = parse_int("SLURM_TASKS_PER_NODE", item.substr(paren + 2, item.size() - paren - 3), 1, 1 << 20);
    }
    if (node < seen + repeat) return count;
    seen += repeat;
    pos = comma + 1;
  }
  return std::nullopt;
}

DistEnv from_torchrun(const EnvLookup& env) {
  DistEnv d;
  d.launcher = "torchrun";
  d.world_size = static_cast<int>(required_int(env, "WORLD_SIZE", 1, 1 << 20, "RANK is set: a torchrun launch"));
  d.rank = static_cast<int>(required_int(env, "RANK", 0, 1 << 20, "WORLD_SIZE is set: a torchrun launch"));
  if (d.rank >= d.world_size) {
    throw DistributedError(fmt::format("RANK={} is not below WORLD_SIZE={}", d.rank, d.world_size));
  }
  // torchrun sets both; a launch by hand without them is one node.
  d.local_rank = static_cast<int>(int_var(env, "LOCAL_RANK", 0, 1 << 20).value_or(d.rank));
  d.local_world_size = static_cast<int>(int_var(env, "LOCAL_WORLD_SIZE", 1, 1 << 20).value_or(d.world_size));
  if (d.local_rank >= d.local_world_size) {
    throw DistributedError(
        fmt::format("LOCAL_RANK={} is not below LOCAL_WORLD_SIZE={}", d.local_rank, d.local_world_size));
  }
  // torchrun's agent serves the store at MASTER_ADDR:MASTER_PORT even for a single rank, which then connects
  // to it as a client (the GPU run's torchrun --nproc_per_node 1 waited 60 s on the default port before this).
  d.agent_store = env("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  const auto addr = env("MASTER_ADDR");
  if (d.world_size > 1 || d.agent_store) {
    if (!addr || addr->empty()) {
      throw DistributedError("MASTER_ADDR is not set (torchrun sets it; by hand: the host of rank 0)");
    }
    d.master_addr = *addr;
    d.master_port =
        static_cast<int>(required_int(env, "MASTER_PORT", 1, 65535, "torchrun sets it; by hand: a free port"));
  } else {
    // One rank serving its own store: the launcher's address and port where given, else the defaults.
    if (addr && !addr->empty()) d.master_addr = *addr;
    if (auto port = int_var(env, "MASTER_PORT", 1, 65535)) d.master_port = static_cast<int>(*port);
  }
  if (d.agent_store) {
    d.store_prefix =
        "/worker/attempt_" + std::to_string(int_var(env, "TORCHELASTIC_RESTART_COUNT", 0, 1 << 20).value_or(0));
  }
  return d;
}

DistEnv from_slurm(const EnvLookup& env) {
  DistEnv d;
  d.launcher = "slurm";
  d.world_size = static_cast<int>(required_int(env, "SLURM_NTASKS", 1, 1 << 20, "SLURM_PROCID is set: an srun launch"));
  d.rank = static_cast<int>(required_int(env, "SLURM_PROCID", 0, 1 << 20, "SLURM_NTASKS is set: an srun launch"));
  if (d.rank >= d.world_size) {
    throw DistributedError(fmt::format("SLURM_PROCID={} is not below SLURM_NTASKS={}", d.rank, d.world_size));
  }
  d.local_rank = static_cast<int>(int_var(env, "SLURM_LOCALID", 0, 1 << 20).value_or(0));
  if (auto per_node = int_var(env, "SLURM_NTASKS_PER_NODE", 1, 1 << 20)) {
    d.local_world_size = static_cast<int>(*per_node);
  } else if (auto spec = env("SLURM_TASKS_PER_NODE")) {
    const int64_t node = int_var(env, "SLURM_NODEID", 0, 1 << 20).value_or(0);
    d.local_world_size = static_cast<int>(tasks_on_node(*spec, node).value_or(1));
  } else {
    d.local_world_size = d.local_rank + 1;
  }
  if (d.local_rank >= d.local_world_size) {
    throw DistributedError(
        fmt::format("SLURM_LOCALID={} is not below the {} task(s) on this node", d.local_rank, d.local_world_size));
  }
  if (d.world_size > 1) {
    if (auto addr = env("MASTER_ADDR"); addr && !addr->empty()) {
      d.master_addr = *addr;
    } else {
      const auto nodes = env("SLURM_JOB_NODELIST") ? env("SLURM_JOB_NODELIST") : env("SLURM_NODELIST");
      if (!nodes) throw DistributedError("SLURM_JOB_NODELIST is not set and neither is MASTER_ADDR");
      d.master_addr = first_slurm_host(*nodes);
    }
    if (auto port = int_var(env, "MASTER_PORT", 1, 65535)) {
      d.master_port = static_cast<int>(*port);
    } else {
      d.master_port = slurm_default_port(int_var(env, "SLURM_JOB_ID", 0, INT64_MAX).value_or(0));
    }
  }
  return d;
}

}  // namespace

std::string DistEnv::describe() const {
  return fmt::format("rank {} of {} (local {} of {}, {}), store {}:{}{}", rank, world_size, local_rank,
                     local_world_size, launcher, master_addr, master_port, agent_store ? " (torchrun's agent)" : "");
}

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

DistEnv parse_dist_env(const EnvLookup& env) {
  if (env("RANK") || env("WORLD_SIZE")) return from_torchrun(env);
  if (env("SLURM_PROCID") && env("SLURM_NTASKS")) return from_slurm(env);
  return DistEnv{};
}

std::string first_slurm_host(const std::string& nodelist) {
  // The first top-level item ends at a comma outside brackets.
  std::string item;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth < 0) break;
    if (c == ',' && depth == 0) break;
    item += c;
  }
  if (depth != 0 || item.empty()) {
    throw DistributedError(fmt::format("SLURM_JOB_NODELIST={} is not a host list", nodelist));
  }
  // Every bracket group contributes its first number as written ("[007-010]" → "007").
  std::string host;
  for (size_t i = 0; i < item.size(); ++i) {
    if (item[i] != '[') {
      host += item[i];
      continue;
    }
    const size_t close = item.find(']', i);
    const std::string group = item.substr(i + 1, close - i - 1);
    const size_t end = group.find_first_of(",-");
    const std::string first = group.substr(0, end);
    if (first.empty()) throw DistributedError(fmt::format("SLURM_JOB_NODELIST={} is not a host list", nodelist));
    host += first;
    i = close;
  }
  return host;
}

int slurm_default_port(int64_t job_id) { return static_cast<int>(15000 + job_id % 20000); }

}  // namespace mdm::distributed
