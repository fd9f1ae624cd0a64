// Benchmark (not a test): the host's share of a training round that the trainer prepares ahead
// (TrainerOptions::prepare_ahead): the timesteps, dropout coins and noise of every level, drawn on the CPU
// with one sequential generator and with per-sample generators (data-parallel runs), and on a CUDA machine
// the copies to the device, plain (.to(), which waits for the device) and through pinned memory.
//   build/bench/mdm-bench-draws [--config configs/cc12m_s64s256.yaml] [--batch 32] [--repeats 5]
#include <mdm/mdm.h>
#include <mdm/diffusion/multires_diffusion.h>
#include <mdm/train/sample_draws.h>
#include <mdm/util/device_copy.h>

#include <ATen/CPUGeneratorImpl.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>

namespace {

double median_ms(int64_t repeats, const std::function<void()>& f) {
  std::vector<double> ms;
  f();  // warm-up
  for (int64_t i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mdm-bench-draws: the host's share of a training round (noise, t, dropout; copies)"};
  std::string config_path = "configs/cc12m_s64s256.yaml";
  int64_t batch = 32, repeats = 5;
  app.add_option("--config", config_path);
  app.add_option("--batch", batch, "images per round (per rank)");
  app.add_option("--repeats", repeats);
  CLI11_PARSE(app, argc, argv);
  try {
    const mdm::Config cfg = mdm::load_config(config_path);
    const mdm::MultiResDiffusion diffusion(cfg.model, cfg.diffusion);
    std::vector<std::vector<int64_t>> sample_shapes, shapes;
    int64_t values = 0;
    for (int64_t r : diffusion.resolutions()) {
      sample_shapes.push_back({3, r, r});
      shapes.push_back({batch, 3, r, r});
      values += batch * 3 * r * r;
    }
    std::cout << "config " << config_path << ": levels";
    for (int64_t r : diffusion.resolutions()) std::cout << " " << r << "²";
    std::printf(", batch %lld: %.1f M noise values (%.1f MB float32)\n", static_cast<long long>(batch), values / 1e6,
                values * 4 / 1e6);
    at::Generator gen = at::detail::createCPUGenerator(7);
    std::vector<torch::Tensor> eps;
    const double sequential = median_ms(repeats, [&] {
      diffusion.sample_t(batch, gen);
      eps = diffusion.draw_noise(shapes, torch::TensorOptions().dtype(torch::kFloat), gen);
      mdm::condition_dropout_mask(batch, cfg.diffusion.cfg_dropout, gen);
    });
    std::vector<int64_t> slots(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) slots[static_cast<size_t>(i)] = i;
    int64_t step = 0;
    const double per_sample = median_ms(repeats, [&] {
      mdm::train::per_sample_draws(diffusion, sample_shapes, cfg.diffusion.cfg_dropout, 7, step++, slots);
    });
    std::printf("draws on one core: sequential generator %.1f ms, per-sample generators %.1f ms\n", sequential,
                per_sample);
    if (torch::cuda::is_available()) {
      const torch::Device cuda(torch::kCUDA, 0);
      std::vector<torch::Tensor> pinned;
      const double pin = median_ms(repeats, [&] {
        pinned.clear();
        for (const auto& e : eps) pinned.push_back(mdm::util::pin_for(e, cuda));
      });
      const double plain = median_ms(repeats, [&] {
        for (const auto& e : eps) e.to(cuda);
      });
      const double async = median_ms(repeats, [&] {
        for (const auto& e : pinned) mdm::util::to_device_async(e, cuda);
      });
      torch::cuda::synchronize();
      std::printf("to the GPU: pinning %.1f ms; host time of the copies: plain .to() %.1f ms, from pinned memory "
                  "%.2f ms (asynchronous)\n", pin, plain, async);
    }
  } catch (const std::exception& e) {
    std::cerr << "mdm-bench-draws: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
