// mdm-bench: forward, forward+backward and training-step time, images/s, peak memory, FLOPs and MFU, and
// sampling latency of a config's model on a device (docs/benchmarks.md).
#include <mdm/mdm.h>
#include <mdm/perf/bench.h>
#include <mdm/perf/cpu_allocator.h>
#include <mdm/perf/cpu_conv_check.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"mdm-bench: training and sampling speed of a config's model on a device"};
  std::string config_path;
  std::vector<std::string> overrides;
  mdm::perf::BenchOptions opt;
  bool json = false, no_step = false, no_sample = false, no_graphs = false;
  double guidance = 0;
  app.add_option("-c,--config", config_path, "run config (YAML; libmdm's or the reference's layout)")->required();
  app.add_option("--set", overrides, "override a config key: --set train.batch_size=8 (repeatable)");
  app.add_option("--batch-size", opt.batch_size, "images per step (default: the stage's batch)");
  app.add_option("--precision", opt.precision,
                 "fp32 | bf16 (CUDA autocast); default: train.precision on CUDA, fp32 on CPU");
  app.add_option("--device", opt.device, "cpu | cuda | cuda:N")->capture_default_str();
  app.add_option("--stage", opt.stage, "training stage whose levels are trained (1-based; default: the last)");
  app.add_option("--warmup", opt.warmup, "untimed runs before each phase")->capture_default_str();
  app.add_option("--repeats", opt.repeats, "timed runs per phase (median, min, max)")->capture_default_str();
  app.add_option("--threads", opt.threads, "intra-op CPU threads (default: LibTorch's)");
  app.add_option("--text-tokens", opt.text_tokens, "tokens of the synthetic text features (default: text.max_tokens)");
  app.add_option("--sample-steps", opt.sample_steps, "network calls per sampling chain")->capture_default_str();
  app.add_option("--sample-batches", opt.sample_batches, "batch sizes of the sampling latency")->capture_default_str();
  app.add_option("--sample-repeats", opt.sample_repeats, "timed sampling chains per batch size")->capture_default_str();
  app.add_flag("--no-step", no_step, "skip the training-step phase (forward and forward+backward only)");
  app.add_flag("--no-sample", no_sample, "skip the sampling latency");
  app.add_option("--guidance-scale", guidance,
                 "classifier-free guidance while sampling (default: sample.guidance_scale)");
  app.add_flag("--no-graphs", no_graphs, "on CUDA, skip sampling with CUDA graphs");
  app.add_option("--peak-tflops", opt.peak_tflops, "the device's dense bf16 peak for MFU")->capture_default_str();
  app.add_flag("--channels-last", opt.channels_last, "convolution weights and inputs in channels-last format (an A/B: 1.1-1.3x slower than the default layout on the H200, docs/benchmarks.md)");
  app.add_flag("--tf32", opt.tf32, "on CUDA, TF32 for fp32 matmuls and convolutions");
  app.add_option("--profile", opt.profile_dir,
                 "after the timings, write Chrome traces of one forward and one training step (with --no-step: "
                 "forward + backward) to this directory, and of 10 steps of each sampling chain measured "
                 "(sample-b<batch>[-graphs].trace.json); scripts/profile-summary.py sums them by kernel, or on "
                 "the CPU by operator");
  app.add_flag("!--no-fused-adam", opt.fused_adam,
               "Adam as _foreach_ ops, not LibTorch's fused kernel (which it has on CUDA from 2.0, the CPU from 2.4)");
  app.add_flag("--fp32-norms", opt.fp32_norms,
               "under bf16 autocast, GroupNorm in float32 as the reference runs it (default: in bf16)");
  std::string training_fusion = "auto", inference_fusion = "auto";
  const auto fusion_values = CLI::IsMember({"off", "auto", "always"});
  app.add_option("--training-fusion", training_fusion,
                 "fused GroupNorm, scale-shift, SiLU and bias ops in the training phases (nn/folded_group_norm.h): "
                 "auto = large CUDA activations, off = ATen's ops, always = everywhere")
      ->check(fusion_values)
      ->capture_default_str();
  app.add_option("--inference-fusion", inference_fusion, "the same while sampling")
      ->check(fusion_values)
      ->capture_default_str();
  app.add_option("--seed", opt.seed, "seed of the weights and synthetic inputs")->capture_default_str();
  std::string cpu_allocator = "caching";
  app.add_option("--cpu-allocator", cpu_allocator,
                 "CPU tensors: caching (libmdm's, reuses large blocks) or malloc (LibTorch's default)")
      ->check(CLI::IsMember({"caching", "malloc"}))
      ->capture_default_str();
  app.add_flag("--json", json, "print one JSON object instead of the table");
  CLI11_PARSE(app, argc, argv);
  // Standard output is the result (a table, or JSON that scripts parse): the library's log goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("mdm-bench"));
  try {
    if (cpu_allocator == "caching") mdm::perf::install_caching_cpu_allocator();
    mdm::perf::ensure_correct_cpu_convolutions();  // a LibTorch with wrong CPU convolutions (perf/cpu_conv_check.h)
    opt.step = !no_step;
    opt.training_fusion = mdm::nn::parse_fusion(training_fusion);
    opt.inference_fusion = mdm::nn::parse_fusion(inference_fusion);
    opt.sample = !no_sample;
    opt.cuda_graphs = !no_graphs;
    if (app.count("--guidance-scale") > 0) opt.guidance_scale = guidance;
    const mdm::Config config = mdm::load_config(config_path, overrides);
    auto log = [json](const std::string& line) {
      if (!json) std::cerr << "mdm-bench: " << line << "\n";
    };
    const auto result = mdm::perf::run_benchmark(config, opt, log);
    std::cout << (json ? mdm::perf::to_json(result) + "\n" : mdm::perf::format_table(result));
    if (!result.profile_error.empty()) {
      std::cerr << "mdm-bench: --profile: " << result.profile_error << "\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "mdm-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
