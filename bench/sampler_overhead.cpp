// Benchmark (not a test): the sampler's own cost per step next to the network's, on the CPU.
//   build/bench/mdm-bench-sampler [--config configs/tiny_s16s32.yaml] [--steps 50] [--batch 4]
// Runs the same chain twice: with the real network, and with a stand-in that returns zeros at once;
// the difference is the network's time, the second run is the sampler's (x0, thresholding, update, noise).
// Then the noise draws alone (every level's, as a step draws them) on one thread and on all of them.
#include <mdm/mdm.h>
#include <mdm/diffusion/multires_diffusion.h>
#include <mdm/diffusion/sampler.h>
#include <mdm/perf/cpu_allocator.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"mdm-bench-sampler: sampler overhead per step vs the network"};
  std::string config_path = "configs/tiny_s16s32.yaml", sampler = "ancestral";
  int64_t steps = 50, batch = 4, threads = 0;
  bool noise_only = false;
  app.add_option("--config", config_path);
  app.add_option("--sampler", sampler);
  app.add_option("--steps", steps);
  app.add_option("--batch", batch);
  app.add_option("--threads", threads, "intra-op threads (0 = LibTorch's default)");
  app.add_flag("--noise-only", noise_only, "time the noise draws alone (no network: any config's size)");
  CLI11_PARSE(app, argc, argv);
  try {
    mdm::perf::install_caching_cpu_allocator();  // as mdm-sample: no page faults on every step's tensors
    if (threads > 0) torch::set_num_threads(static_cast<int>(threads));
    mdm::Config cfg = mdm::load_config(config_path);
    cfg.model.conditioning = mdm::ConditioningKind::None;  // the network alone, no text encoder needed
    // No network for the noise alone (a full-size model takes gigabytes to build).
    auto model = noise_only ? nullptr : mdm::build_model(cfg.model);
    mdm::MultiResDiffusion diffusion(cfg.model, cfg.diffusion);
    torch::NoGradGuard no_grad;
    std::vector<uint64_t> seeds(batch);
    for (int64_t i = 0; i < batch; ++i) seeds[i] = i;
    auto time_chain = [&](const mdm::DenoiseFn& fn) {
      mdm::NoiseSource noise(seeds);
      std::vector<torch::Tensor> z;
      for (int64_t r : diffusion.resolutions()) z.push_back(noise.normal(torch::empty({batch, 3, r, r})));
      mdm::SamplerOptions o;
      o.sampler = sampler;
      o.steps = steps;
      o.threshold = mdm::ThresholdOptions::preset("dynamic");
      const auto start = std::chrono::steady_clock::now();
      mdm::run_sampler(fn, diffusion.schedules(), z, o, noise);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
    };
    mdm::DenoiseFn network = [&](const std::vector<torch::Tensor>& z, int64_t t) {
      return model->forward(z, torch::full({batch}, static_cast<double>(t - 1)), mdm::Conditioning{});
    };
    mdm::DenoiseFn zeros = [](const std::vector<torch::Tensor>& z, int64_t) {
      std::vector<torch::Tensor> out;
      for (const auto& x : z) out.push_back(torch::zeros_like(x));
      return out;
    };
    std::cout << "config " << config_path << ", sampler " << sampler << ", " << steps << " steps, batch " << batch
              << ", " << torch::get_num_threads() << " threads\n";
    if (!noise_only) {
      time_chain(zeros);  // warm-up
      const double with_network = time_chain(network);
      const double sampler_only = time_chain(zeros);
      std::printf("per step: total %.3f ms, network %.3f ms, sampler %.3f ms (%.1f%% of the step)\n", with_network * 1e3,
                  (with_network - sampler_only) * 1e3, sampler_only * 1e3, 100.0 * sampler_only / with_network);
    }
    const int all_threads = torch::get_num_threads();
    // Median of 5 rounds of `steps` draws each, after a warm-up round.
    auto time_noise = [&](int threads) {
      torch::set_num_threads(threads);
      mdm::NoiseSource noise(seeds);
      std::vector<torch::Tensor> like;
      for (int64_t r : diffusion.resolutions()) like.push_back(torch::empty({batch, 3, r, r}));
      std::vector<double> rounds;
      for (int round = 0; round < 6; ++round) {
        const auto start = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < steps; ++i) {
          for (const auto& l : like) noise.normal(l);
        }
        if (round > 0) rounds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      std::sort(rounds.begin(), rounds.end());
      return rounds[rounds.size() / 2] / steps;
    };
    const double noise_one = time_noise(1), noise_all = time_noise(all_threads);
    std::printf("noise per step (every level, batch %lld): %.3f ms on 1 thread, %.3f ms on %d threads (%.2fx)\n",
                static_cast<long long>(batch), noise_one * 1e3, noise_all * 1e3, all_threads, noise_one / noise_all);
  } catch (const std::exception& e) {
    std::cerr << "mdm-bench-sampler: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
