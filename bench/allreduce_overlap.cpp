// Benchmark (not a test): the data-parallel gradient all-reduce per training step, next to a raw all-reduce
// of one flat buffer of the same size, and how much of it hides behind backward.
//   build/bench/mdm-bench-allreduce [--ranks 2] [--config configs/tiny_s16s32.yaml] [--batch 4] [--steps 10]
// Without a launcher's environment it starts --ranks copies of itself (RANK, WORLD_SIZE, MASTER_ADDR, ...) on
// Gloo over loopback; under torchrun each process is one rank. Per rank and step it measures: forward +
// backward alone; a step whose buckets all start after backward (the whole all-reduce is exposed); a step
// whose buckets start from the gradient hooks (what is left exposed after backward); and a raw all-reduce
// of one flat buffer of the gradients' size. "Exposed" is finish()'s wait on the rank that ends backward
// last: the others also wait for it there, which is load imbalance, not communication.
#include <mdm/diffusion/multires_diffusion.h>
#include <mdm/distributed/gradient_bucketer.h>
#include <mdm/distributed/process_group.h>
#include <mdm/mdm.h>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Starts `ranks` copies of this program with a launcher's environment and waits for them.
int launch(int ranks, char** argv) {
  const int port = 20000 + static_cast<int>(::getpid() % 20000);
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
    worst = std::max(worst, WIFEXITED(status) ? WEXITSTATUS(status) : 1);
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mdm-bench-allreduce: gradient all-reduce per step vs a raw flat all-reduce, and its overlap"};
  std::string config_path = "configs/tiny_s16s32.yaml";
  int ranks = 2, threads = 1;
  int64_t batch = 4, steps = 10;
  double bucket_mb = 25;
  app.add_option("--ranks", ranks, "ranks to start when not under a launcher");
  app.add_option("--config", config_path);
  app.add_option("--batch", batch, "images per rank and step");
  app.add_option("--steps", steps, "measured steps per mode (after one warm-up step)");
  app.add_option("--threads", threads, "intra-op threads per rank");
  app.add_option("--bucket-mb", bucket_mb);
  CLI11_PARSE(app, argc, argv);
  if (!std::getenv("RANK") && !std::getenv("SLURM_PROCID")) return launch(ranks, argv);
  try {
    torch::set_num_threads(threads);
    const auto env = mdm::distributed::parse_dist_env();
    mdm::distributed::GroupOptions go;
    go.timeout = std::chrono::seconds(120);
    auto group = mdm::distributed::init_process_group(env, torch::kCPU, go);
    mdm::Config cfg = mdm::load_config(config_path);
    cfg.model.conditioning = mdm::ConditioningKind::None;  // the network alone
    cfg.model.num_classes = 0;
    torch::manual_seed(1);
    auto model = mdm::build_model(cfg.model);
    mdm::MultiResDiffusion diffusion(cfg.model, cfg.diffusion);
    std::vector<std::pair<std::string, torch::Tensor>> params;
    for (auto& item : model->named_parameters(true)) params.emplace_back(item.key(), item.value());
    auto gen = at::detail::createCPUGenerator(100 + static_cast<uint64_t>(group->rank()));
    const int64_t res = diffusion.resolutions().back();
    double backward_seconds = 0;
    auto forward_backward = [&] {
      auto x = torch::rand({batch, 3, res, res}, gen) * 2 - 1;
      auto x0 = diffusion.pyramid(x);
      auto t = diffusion.sample_t(batch, gen);
      auto noisy = diffusion.add_noise(x0, t, gen);
      auto out = model->forward(noisy.z, (t - 1).to(torch::kFloat), mdm::Conditioning{});
      auto loss = diffusion.loss(out, noisy).loss;
      const auto t0 = Clock::now();
      loss.backward();
      backward_seconds = since(t0);
    };
    auto zero = [&] {
      for (auto& [n, p] : params) p.mutable_grad() = torch::Tensor();
    };
    std::vector<double> compute, backward, step_after, exposed_after, step_overlap, exposed_overlap, raw;
    // The exposed wait of the rank whose backward ended last in this step (one small all-reduce, untimed).
    auto last_rank_exposed = [&](double backward_end, double exposed) {
      auto table = torch::zeros({group->size(), 2}, torch::kDouble);
      table[group->rank()][0] = backward_end;
      table[group->rank()][1] = exposed;
      group->all_reduce(table);
      return table[table.select(1, 0).argmax().item<int64_t>()][1].item<double>();
    };
    // Forward + backward alone.
    for (int64_t i = 0; i <= steps; ++i) {
      group->barrier("compute");
      const auto t0 = Clock::now();
      forward_backward();
      if (i > 0) compute.push_back(since(t0)), backward.push_back(backward_seconds);
      zero();
    }
    int64_t numel = 0;
    size_t buckets = 0;
    for (bool overlap : {false, true}) {
      mdm::distributed::BucketOptions bo;
      bo.bucket_bytes = static_cast<int64_t>(bucket_mb * 1024 * 1024);
      bo.overlap = overlap;
      mdm::distributed::GradientBucketer bucketer(group, params, bo);
      numel = bucketer.total_numel();
      buckets = bucketer.num_buckets();
      for (int64_t i = 0; i <= steps; ++i) {
        group->barrier("bucketed step");
        const auto t0 = Clock::now();
        bucketer.prepare(true);
        forward_backward();
        const double backward_end = since(t0);
        bucketer.finish();
        const double step = since(t0);
        const double exposed = last_rank_exposed(backward_end, bucketer.timings().exposed_seconds);
        zero();
        if (i == 0) continue;
        (overlap ? step_overlap : step_after).push_back(step);
        (overlap ? exposed_overlap : exposed_after).push_back(exposed);
      }
    }
    auto flat = torch::ones({numel});
    for (int64_t i = 0; i <= steps; ++i) {
      group->barrier("raw all-reduce");
      const auto t0 = Clock::now();
      group->all_reduce(flat);
      if (i > 0) raw.push_back(since(t0));
    }
    group->barrier("the end");
    if (group->rank() == 0) {
      const double r = median(raw), after = median(exposed_after), over = median(exposed_overlap);
      std::cout << fmt::format(
          "{} ranks (gloo, {} thread(s) each), config {}, batch {} per rank; {} gradients "
          "({:.2f} MB) in {} bucket(s) of <= {} MB; medians of {} steps\n",
          group->size(), threads, config_path, batch, numel, numel * 4 / 1e6, buckets, bucket_mb, steps);
      std::cout << fmt::format("forward+backward alone   {:8.2f} ms (backward {:.2f} ms)\n", median(compute) * 1e3,
                               median(backward) * 1e3);
      std::cout << fmt::format("raw flat all-reduce      {:8.2f} ms\n", r * 1e3);
      std::cout << fmt::format("buckets after backward   {:8.2f} ms exposed (last rank), step {:.2f} ms\n", after * 1e3,
                               median(step_after) * 1e3);
      std::cout << fmt::format("buckets during backward  {:8.2f} ms exposed (last rank), step {:.2f} ms\n", over * 1e3,
                               median(step_overlap) * 1e3);
      std::cout << fmt::format("hidden behind backward   {:8.1f} % of the all-reduce ({:.2f} of {:.2f} ms)\n",
                               after > 0 ? 100.0 * (after - over) / after : 0.0, (after - over) * 1e3, after * 1e3);
    }
  } catch (const std::exception& e) {
    std::cerr << "mdm-bench-allreduce: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
