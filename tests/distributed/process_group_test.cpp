// The c10d process group on Gloo, with ranks as threads of this process: collectives, the join check and
// the diagnosis of a failed collective.
#include "../test_util.h"
#include "dist_test_util.h"

#include <mdm/distributed/process_group.h>

#include <atomic>

namespace mdm::test {
namespace {

using distributed::ProcessGroup;
using distributed::ReduceOp;

TEST(ProcessGroup, BuildHasGloo) {
  EXPECT_TRUE(distributed::c10d_available());
  const auto b = distributed::available_backends();
  EXPECT_NE(std::find(b.begin(), b.end(), "gloo"), b.end());
}

TEST(ProcessGroup, AllReduceBroadcastBarrier) {
  run_ranks(3, [](ProcessGroup& g) {
    EXPECT_EQ(g.size(), 3);
    EXPECT_EQ(g.backend(), "gloo");
    auto x = torch::tensor({1.0f, 2.0f}) * (g.rank() + 1);  // rank r: (r+1)·[1, 2]
    g.all_reduce(x);
    EXPECT_TRUE(torch::equal(x, torch::tensor({6.0f, 12.0f})));
    auto m = torch::tensor({static_cast<double>(g.rank())});
    g.all_reduce(m, ReduceOp::Max);
    EXPECT_EQ(m.item<double>(), 2.0);
    g.all_reduce(m.fill_(g.rank() + 5), ReduceOp::Min);
    EXPECT_EQ(m.item<double>(), 5.0);
    // Broadcast of several dtypes and shapes from rank 1.
    auto a = torch::full({2, 3}, static_cast<float>(g.rank()));
    auto b = torch::full({4}, static_cast<int64_t>(10 + g.rank()));
    auto c = torch::full({1, 1, 2}, static_cast<double>(g.rank()) / 3);
    g.broadcast({a, b, c}, 1);
    EXPECT_TRUE(torch::equal(a, torch::full({2, 3}, 1.0f)));
    EXPECT_TRUE(torch::equal(b, torch::full({4}, int64_t{11})));
    EXPECT_TRUE(torch::equal(c, torch::full({1, 1, 2}, 1.0 / 3)));
    g.barrier("the test's barrier");
  });
}

TEST(ProcessGroup, OneRankIsAGroupToo) {
  run_ranks(1, [](ProcessGroup& g) {
    auto x = torch::tensor({3.0f});
    g.all_reduce(x);
    EXPECT_EQ(x.item<float>(), 3.0f);
  });
}

TEST(ProcessGroup, UnreachableStoreNamesTheAddress) {
  const int port = free_port();  // nobody serves it
  distributed::GroupOptions o;
  o.timeout = std::chrono::milliseconds(1500);
  try {
    distributed::init_process_group(local_env(1, 2, port), torch::kCPU, o);
    FAIL() << "expected an error";
  } catch (const DistributedError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("rank 1: cannot reach the rendezvous store at 127.0.0.1:" + std::to_string(port)),
              std::string::npos)
        << what;
  }
}

TEST(ProcessGroup, MissingRankIsNamed) {
  distributed::GroupOptions o;
  o.timeout = std::chrono::milliseconds(1500);
  try {
    distributed::init_process_group(local_env(0, 3, free_port()), torch::kCPU, o);
    FAIL() << "expected an error";
  } catch (const DistributedError& e) {
    EXPECT_NE(std::string(e.what()).find("rank(s) 1, 2 of 3 did not join"), std::string::npos) << e.what();
  }
}

TEST(ProcessGroup, PeerFailureIsDiagnosedWithItsReason) {
  // Rank 1 reports a failure and leaves; rank 0's next all-reduce fails and says who failed and why.
  std::string message;
  EXPECT_THROW(run_ranks(
                   2,
                   [&](ProcessGroup& g) {
                     if (g.rank() == 1) {
                       g.report_failure("rank 1: the disk is full");
                       throw Error("rank 1 leaves");
                     }
                     auto x = torch::ones({4});
                     try {
                       g.all_reduce(x);
                     } catch (const DistributedError& e) {
                       message = e.what();
                     }
                   },
                   std::chrono::seconds(5)),
               Error);
  EXPECT_NE(message.find("rank 0: "), std::string::npos) << message;
  EXPECT_NE(message.find("rank 1 failed: rank 1: the disk is full"), std::string::npos) << message;
}

TEST(ProcessGroup, RanksSharingAGpuAreNamed) {
  // NCCL refuses two ranks on one GPU; init_process_group names them from each rank's host and PCI address.
  EXPECT_EQ(distributed::describe_shared_gpus({"node-a 0000:1b:00", "node-a 0000:1c:00", "node-b 0000:1b:00"}), "");
  EXPECT_EQ(distributed::describe_shared_gpus({"node-a 0000:1b:00"}), "");
  EXPECT_EQ(distributed::describe_shared_gpus({"h 0000:1b:00", "h 0000:1b:00"}),
            "NCCL runs one rank per GPU, and ranks 0 and 1 share the GPU h 0000:1b:00 (host, PCI address): give each "
            "rank its own GPU (--device cuda puts local rank N on cuda:N; start at most as many ranks per node as it "
            "has GPUs)");
  const auto three = distributed::describe_shared_gpus(
      {"h 0000:2a:00", "h 0000:1b:00", "h 0000:2a:00", "g 0000:1b:00", "h 0000:2a:00", "h 0000:1b:00"});
  EXPECT_NE(three.find("ranks 0, 2 and 4 share the GPU h 0000:2a:00; ranks 1 and 5 share the GPU h 0000:1b:00 ("),
            std::string::npos)
      << three;
}

// The group from the launcher's own environment: run under PyTorch's torchrun by tests/scripts/torchrun_check.sh
// (ctest distributed.torchrun), with 1 and 2 ranks on the CPU; skipped otherwise.
TEST(ProcessGroup, FromTheLaunchersEnvironment) {
  // Asked for by the script, not inferred from RANK: a test run inside someone's launcher job must not join it.
  if (!std::getenv("MDM_TORCHRUN_CHECK")) GTEST_SKIP() << "run by tests/scripts/torchrun_check.sh under torchrun";
  const auto env = distributed::parse_dist_env();
  distributed::GroupOptions o;
  o.timeout = std::chrono::seconds(60);
  o.exit_on_peer_failure = false;
  auto g = distributed::init_process_group(env, torch::kCPU, o);
  const int world = g->size();
  auto x = torch::tensor({static_cast<float>(g->rank() + 1)});
  g->all_reduce(x);
  EXPECT_EQ(x.item<float>(), world * (world + 1) / 2.0f);
  g->barrier("the torchrun test's barrier");
  std::printf("torchrun check: %s: all-reduce %g\n", env.describe().c_str(), x.item<float>());
}

}  // namespace
}  // namespace mdm::test
