// The distributed layer alone (src/distributed/ and nothing else of libmdm), for a machine where the whole
// library is not built: scripts/device-dist-check.sh compiles it with the machine's LibTorch and runs it.
//   dist_check --backend nccl|gloo --ranks N [--device cuda:0|cuda|cpu] [--timeout S]
// Without a launcher's environment it starts N copies of itself as ranks (torchrun's variables on one node);
// under torchrun each process is one rank. Each rank checks all-reduce (sum, max), broadcast, barrier and
// the gradient bucketer (averaged gradients against the mean of every rank's own gradients), and times an
// all-reduce of 64 MiB. Prints one line per rank: "rank R: ok ..." or the error; exit code 0 when all pass.
#include <mdm/distributed/dist_error.h>
#include <mdm/distributed/gradient_bucketer.h>
#include <mdm/distributed/process_group.h>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

extern char** environ;

namespace {

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return fallback;
}

int launch(int ranks, char** argv) {
  const int port = 21000 + static_cast<int>(::getpid() % 20000);
  std::vector<pid_t> pids;
  for (int r = 0; r < ranks; ++r) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    for (const auto& kv : {fmt::format("RANK={}", r), fmt::format("WORLD_SIZE={}", ranks),
                           fmt::format("LOCAL_RANK={}", r), fmt::format("LOCAL_WORLD_SIZE={}", ranks),
                           std::string("MASTER_ADDR=127.0.0.1"), fmt::format("MASTER_PORT={}", port)}) {
      env.push_back(kv);
    }
    std::vector<char*> envp;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    pid_t pid = -1;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, envp.data()) != 0) return 1;
    pids.push_back(pid);
  }
  int worst = 0;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    worst = std::max(worst, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  return worst;
}

struct NetImpl : torch::nn::Module {
  NetImpl() {
    a = register_module("a", torch::nn::Linear(64, 256));
    b = register_module("b", torch::nn::Linear(256, 256));
    c = register_module("c", torch::nn::Linear(256, 8));
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(7);
    for (auto& p : parameters()) p.copy_(torch::randn(p.sizes(), gen, torch::kFloat) * 0.1);
  }
  torch::Tensor forward(const torch::Tensor& x) { return c(torch::relu(b(torch::relu(a(x))))); }
  torch::nn::Linear a{nullptr}, b{nullptr}, c{nullptr};
};
TORCH_MODULE(Net);

torch::Tensor input(int rank, int micro, torch::Device device) {
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(100 * rank + micro));
  return torch::randn({16, 64}, gen, torch::kFloat).to(device);
}

void check(bool ok, const std::string& what) {
  if (!ok) throw mdm::Error("check failed: " + what);
}

}  // namespace

int main(int argc, char** argv) {
  if (!std::getenv("RANK")) return launch(std::stoi(arg(argc, argv, "--ranks", "2")), argv);
  try {
    const auto env = mdm::distributed::parse_dist_env();
    const std::string backend = arg(argc, argv, "--backend", "gloo");
    const auto device =
        mdm::distributed::rank_device(arg(argc, argv, "--device", backend == "nccl" ? "cuda" : "cpu"), env);
    mdm::distributed::GroupOptions go;
    go.backend = backend;
    go.timeout = std::chrono::milliseconds(static_cast<int64_t>(std::stod(arg(argc, argv, "--timeout", "60")) * 1000));
    auto group = mdm::distributed::init_process_group(env, device, go);
    const int rank = group->rank(), world = group->size();
    auto opts = torch::TensorOptions().device(device);
    // all-reduce
    auto x = torch::full({1000}, static_cast<float>(rank + 1), opts);
    group->all_reduce(x);
    check(torch::allclose(x.cpu(), torch::full({1000}, world * (world + 1) / 2.0f)), "all-reduce sum");
    auto m = torch::full({3}, static_cast<double>(rank), opts.dtype(torch::kDouble));
    group->all_reduce(m, mdm::distributed::ReduceOp::Max);
    check(m.cpu().max().item<double>() == world - 1, "all-reduce max");
    // broadcast from the last rank, of a device tensor and a CPU one
    auto d = torch::full({5}, static_cast<float>(rank), opts);
    auto h = torch::full({2, 2}, static_cast<int64_t>(rank));
    group->broadcast({d, h}, world - 1);
    check(d.cpu().eq(world - 1).all().item<bool>() && h.eq(world - 1).all().item<bool>(), "broadcast");
    group->barrier("the check's barrier");
    // gradient bucketer: 2 micro-steps, sync in the last, small buckets
    Net net;
    net->to(device);
    std::vector<std::pair<std::string, torch::Tensor>> params;
    for (auto& item : net->named_parameters(true)) params.emplace_back(item.key(), item.value());
    mdm::distributed::BucketOptions bo;
    bo.first_bucket_bytes = 4096;
    bo.bucket_bytes = 64 * 1024;
    mdm::distributed::GradientBucketer bucketer(group, params, bo);
    for (int micro = 0; micro < 2; ++micro) {
      bucketer.prepare(micro == 1);
      (net->forward(input(rank, micro, device)).square().mean() / 2).backward();
    }
    bucketer.finish();
    Net reference;
    reference->to(device);
    for (int r = 0; r < world; ++r) {
      for (int micro = 0; micro < 2; ++micro) {
        (reference->forward(input(r, micro, device)).square().mean() / 2 / world).backward();
      }
    }
    double worst = 0;
    auto got = net->parameters(), want = reference->parameters();
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, (got[i].grad() - want[i].grad()).abs().max().item<double>());
    check(worst < 1e-5, fmt::format("bucketed gradients (max difference {})", worst));
    // 64 MiB all-reduce, timed
    auto big = torch::ones({16 * 1024 * 1024}, opts);
    group->all_reduce(big);
    if (device.is_cuda()) torch::cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) group->all_reduce(big);
    if (device.is_cuda()) torch::cuda::synchronize();
    const double ms = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 5 * 1e3;
    group->barrier("the end of the check");
    std::cout << fmt::format(
        "rank {}: ok — {} {} on {}, {} bucket(s), max gradient difference {:.2e}, 64 MiB "
        "all-reduce {:.2f} ms ({})\n",
        rank, world, backend, device.str(), bucketer.num_buckets(), worst, ms, env.describe());
    return 0;
  } catch (const std::exception& e) {
    std::cout << "rank " << std::getenv("RANK") << ": FAILED: " << e.what() << std::endl;
    return 1;
  }
}
