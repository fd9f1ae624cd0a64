// The launch environment: torchrun's and SLURM's variables, SLURM host lists, and errors that name the
// variable at fault.
#include "../test_util.h"

#include <mdm/distributed/dist_env.h>

#include <map>

namespace mdm::test {
namespace {

using distributed::DistEnv;
using distributed::parse_dist_env;

distributed::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

void expect_error(const std::map<std::string, std::string>& vars, const std::string& needle) {
  try {
    parse_dist_env(env_of(vars));
    FAIL() << "expected an error mentioning " << needle;
  } catch (const DistributedError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(DistEnv, NoLauncherIsOneProcess) {
  const DistEnv d = parse_dist_env(env_of({}));
  EXPECT_EQ(d.world_size, 1);
  EXPECT_EQ(d.rank, 0);
  EXPECT_FALSE(d.distributed());
  EXPECT_EQ(d.launcher, "none");
}

TEST(DistEnv, Torchrun) {
  const DistEnv d = parse_dist_env(env_of({{"RANK", "11"},
                                           {"WORLD_SIZE", "16"},
                                           {"LOCAL_RANK", "3"},
                                           {"LOCAL_WORLD_SIZE", "8"},
                                           {"MASTER_ADDR", "10.1.2.3"},
                                           {"MASTER_PORT", "29511"},
                                           {"SLURM_PROCID", "0"},  // torchrun inside an allocation: torchrun wins
                                           {"SLURM_NTASKS", "2"}}));
  EXPECT_EQ(d.rank, 11);
  EXPECT_EQ(d.world_size, 16);
  EXPECT_EQ(d.local_rank, 3);
  EXPECT_EQ(d.local_world_size, 8);
  EXPECT_EQ(d.master_addr, "10.1.2.3");
  EXPECT_EQ(d.master_port, 29511);
  EXPECT_EQ(d.launcher, "torchrun");
  EXPECT_TRUE(d.distributed());
  EXPECT_EQ(d.describe(), "rank 11 of 16 (local 3 of 8, torchrun), store 10.1.2.3:29511");
}

TEST(DistEnv, TorchrunAgentStore) {
  // torchrun's agent serves the store; every rank connects as a client under the restart's prefix.
  const DistEnv d = parse_dist_env(env_of({{"RANK", "0"},
                                           {"WORLD_SIZE", "2"},
                                           {"MASTER_ADDR", "127.0.0.1"},
                                           {"MASTER_PORT", "29400"},
                                           {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                           {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  EXPECT_TRUE(d.agent_store);
  EXPECT_EQ(d.store_prefix, "/worker/attempt_2");
  const DistEnv own = parse_dist_env(env_of({{"RANK", "0"},
                                             {"WORLD_SIZE", "2"},
                                             {"MASTER_ADDR", "127.0.0.1"},
                                             {"MASTER_PORT", "29400"},
                                             {"TORCHELASTIC_USE_AGENT_STORE", "False"}}));
  EXPECT_FALSE(own.agent_store);
  EXPECT_EQ(own.store_prefix, "");
}

TEST(DistEnv, TorchrunOneRankConnectsToTheAgentsStore) {
  // torchrun --nproc_per_node 1: the agent still serves the store, at the port it gives, not 29500.
  const DistEnv d = parse_dist_env(env_of({{"RANK", "0"},
                                           {"WORLD_SIZE", "1"},
                                           {"MASTER_ADDR", "localhost"},
                                           {"MASTER_PORT", "36853"},
                                           {"TORCHELASTIC_USE_AGENT_STORE", "True"}}));
  EXPECT_TRUE(d.agent_store);
  EXPECT_EQ(d.master_addr, "localhost");
  EXPECT_EQ(d.master_port, 36853);
  EXPECT_THROW(parse_dist_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}})),
               DistributedError);
  // Without the agent's store, one rank serves its own: at MASTER_PORT where set.
  const DistEnv own = parse_dist_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_PORT", "4000"}}));
  EXPECT_FALSE(own.agent_store);
  EXPECT_EQ(own.master_port, 4000);
  EXPECT_EQ(parse_dist_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}})).master_port, 29500);
}

TEST(DistEnv, ByHandWithoutLocalRankIsOneNode) {
  const DistEnv d = parse_dist_env(
      env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1234"}}));
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 2);
}

TEST(DistEnv, Slurm) {
  const DistEnv d = parse_dist_env(env_of({{"SLURM_PROCID", "9"},
                                           {"SLURM_NTASKS", "12"},
                                           {"SLURM_LOCALID", "1"},
                                           {"SLURM_NODEID", "3"},
                                           {"SLURM_TASKS_PER_NODE", "4(x3),2"},
                                           {"SLURM_JOB_NODELIST", "gpu[007-009,012],login1"},
                                           {"SLURM_JOB_ID", "123456"}}));
  EXPECT_EQ(d.rank, 9);
  EXPECT_EQ(d.world_size, 12);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 2);  // the fourth node runs the last 2 tasks
  EXPECT_EQ(d.master_addr, "gpu007");
  EXPECT_EQ(d.master_port, 15000 + 123456 % 20000);
  EXPECT_EQ(d.launcher, "slurm");
}

TEST(DistEnv, SlurmWithMasterAddrAndPort) {
  const DistEnv d = parse_dist_env(env_of({{"SLURM_PROCID", "0"},
                                           {"SLURM_NTASKS", "8"},
                                           {"SLURM_LOCALID", "0"},
                                           {"SLURM_NTASKS_PER_NODE", "8"},
                                           {"SLURM_JOB_NODELIST", "n1"},
                                           {"MASTER_ADDR", "head"},
                                           {"MASTER_PORT", "4000"}}));
  EXPECT_EQ(d.master_addr, "head");
  EXPECT_EQ(d.master_port, 4000);
  EXPECT_EQ(d.local_world_size, 8);
}

TEST(DistEnv, SlurmHostLists) {
  using distributed::first_slurm_host;
  EXPECT_EQ(first_slurm_host("node17"), "node17");
  EXPECT_EQ(first_slurm_host("gpu[007-010,012],login1"), "gpu007");
  EXPECT_EQ(first_slurm_host("a1,b[2-3]"), "a1");
  EXPECT_EQ(first_slurm_host("rack[1-2]-n[05,07]"), "rack1-n05");
  EXPECT_EQ(first_slurm_host("n[3]"), "n3");
  EXPECT_THROW(first_slurm_host("gpu[1-2"), DistributedError);
  EXPECT_THROW(first_slurm_host(""), DistributedError);
  EXPECT_THROW(first_slurm_host("n[]"), DistributedError);
}

TEST(DistEnv, ErrorsNameTheVariable) {
  const std::map<std::string, std::string> ok = {
      {"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  auto with = [&](const std::string& k, const std::string& v) {
    auto m = ok;
    m[k] = v;
    return m;
  };
  auto without = [&](const std::string& k) {
    auto m = ok;
    m.erase(k);
    return m;
  };
  expect_error(with("RANK", "two"), "RANK=two is not an integer");
  expect_error(with("RANK", "2"), "RANK=2 is not below WORLD_SIZE=2");
  expect_error(with("WORLD_SIZE", "0"), "WORLD_SIZE=0 is outside");
  expect_error(with("MASTER_PORT", "70000"), "MASTER_PORT=70000 is outside [1, 65535]");
  expect_error(without("MASTER_ADDR"), "MASTER_ADDR is not set");
  expect_error(without("MASTER_PORT"), "MASTER_PORT is not set");
  expect_error(without("RANK"), "RANK is not set");
  expect_error(with("LOCAL_RANK", "4"), "LOCAL_RANK=4 is not below LOCAL_WORLD_SIZE=2");
  expect_error({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "3"}}, "SLURM_PROCID=3 is not below SLURM_NTASKS=3");
  expect_error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_TASKS_PER_NODE", "2(x"}}, "SLURM_TASKS_PER_NODE");
  expect_error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_NTASKS_PER_NODE", "2"}}, "SLURM_JOB_NODELIST");
}

}  // namespace
}  // namespace mdm::test
