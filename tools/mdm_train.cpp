// mdm-train: train a Matryoshka Diffusion Model (progressive stages, checkpoints, exact resume). Under torchrun
// or srun (WORLD_SIZE / SLURM_NTASKS > 1) every process is one data-parallel rank (docs/distributed.md).
#include <mdm/distributed/process_group.h>
#include <mdm/mdm.h>
#include <mdm/nn/folded_group_norm.h>
#include <mdm/nn/group_norm.h>
#include <mdm/perf/cpu_allocator.h>
#include <mdm/perf/cpu_conv_check.h>
#include <mdm/train/trainer.h>
#include <mdm/util/stop_signal.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace {

// A failed distributed run ends here: the process group's destructor would wait for collectives that
// cannot complete any more, so the process exits without unwinding (the last complete checkpoint is safe:
// checkpoints are renamed into place only when whole).
[[noreturn]] void exit_distributed(const std::string& message) {
  std::cerr << "mdm-train: " << message << std::endl;
  std::fflush(nullptr);
  std::_Exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mdm-train: train a Matryoshka Diffusion Model"};
  std::string config_path;
  std::vector<std::string> overrides;
  mdm::train::TrainerOptions opt;
  bool print_config = false, dry_run = false;
  double dist_timeout = 1800;
  app.add_option("-c,--config", config_path, "run config (YAML); with --resume DIR it defaults to DIR/config.yaml");
  app.add_option("--set", overrides, "override a config key: --set train.optimizer.lr=3e-4 (repeatable)");
  app.add_option("-o,--output-dir", opt.run_dir, "run directory (default: train.output_dir/<name>)");
  app.add_option("--resume", opt.resume, "auto (continue RUN_DIR/last when present) or a checkpoint directory");
  app.add_option("--max-steps", opt.max_steps, "stop after this global step, with a checkpoint");
  app.add_option("--device", opt.device, "cpu | cuda | cuda:N");
  app.add_flag("--print-config", print_config, "print the resolved config and exit");
  app.add_flag("--dry-run", dry_run, "build everything, run two steps, print time and peak memory per step");
  app.add_option("--dist-timeout", dist_timeout,
                 "distributed runs: seconds to wait for the store, the other ranks and every collective before "
                 "stopping with an error that names the rank at fault (rank 0's sampling must fit in it)")
      ->check(CLI::PositiveNumber);
  double bucket_mb = 25;
  app.add_option("--bucket-mb", bucket_mb,
                 "distributed runs: size of the gradient buckets all-reduced during backward (the first is 1 MB)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--per-sample-draws", opt.per_sample_draws,
               "draw t, noise and condition dropout per sample, as distributed runs do: one process then "
               "reproduces an N-rank run of the same global batch");
  app.add_flag("!--no-prepare-ahead", opt.prepare_ahead,
               "read and draw each round's batch and noise only when the round starts (default: while the round "
               "before it runs, which keeps a GPU busy; the results are the same)");
  app.add_flag("--tf32", opt.tf32, "on CUDA, TF32 for fp32 matmuls and convolutions (train.precision fp32)");
  app.add_flag("!--no-cudnn-benchmark", opt.cudnn_benchmark,
               "on CUDA, cuDNN's default convolution algorithms instead of the fastest ones it measures");
  bool fp32_norms = false;
  app.add_flag("--fp32-norms", fp32_norms,
               "under bf16 autocast, run GroupNorm in float32 as the reference does (default: in bf16, less "
               "memory traffic; docs/training.md)");
  std::string fusion = "auto";
  app.add_option("--fusion", fusion,
                 "the ResNets' fused GroupNorm, scale-shift, SiLU and bias ops (nn/folded_group_norm.h): auto = "
                 "on large CUDA activations, off = ATen's ops, always = everywhere (docs/training.md)")
      ->check(CLI::IsMember({"off", "auto", "always"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (fp32_norms) mdm::nn::set_low_precision_group_norm(false);
  mdm::nn::set_training_fusion(mdm::nn::parse_fusion(fusion));
  mdm::nn::set_inference_fusion(mdm::nn::parse_fusion(fusion));  // the sample grids of log steps
  std::shared_ptr<mdm::distributed::ProcessGroup> group;  // outlives the trainer, see exit_distributed
  try {
    mdm::perf::install_caching_cpu_allocator();  // large activations reuse memory (perf/cpu_allocator.h)
    mdm::perf::ensure_correct_cpu_convolutions();  // a LibTorch with wrong CPU convolutions (perf/cpu_conv_check.h)
    if (config_path.empty()) {
      if (opt.resume.empty() || opt.resume == "auto") throw mdm::ConfigError("--config is required (or --resume DIR)");
      config_path = (std::filesystem::path(opt.resume) / "config.yaml").string();
    }
    mdm::Config config = mdm::load_config(config_path, overrides);
    if (print_config) {
      std::cout << mdm::to_yaml(config);
      return 0;
    }
    const auto env = mdm::distributed::parse_dist_env();
    if (env.distributed()) {
      if (env.rank != 0) {
        spdlog::set_level(spdlog::level::warn);  // rank 0 logs the run; the others only their problems
        spdlog::set_pattern(fmt::format("[%Y-%m-%d %H:%M:%S.%e] [rank {}] [%l] %v", env.rank));
      }
      const auto device = mdm::distributed::rank_device(opt.device, env);
      mdm::distributed::GroupOptions go;
      go.timeout = std::chrono::milliseconds(static_cast<int64_t>(dist_timeout * 1000));
      group = mdm::distributed::init_process_group(env, device, go);
      opt.process_group = group;
      opt.device = device.str();
      opt.buckets.bucket_bytes = static_cast<int64_t>(bucket_mb * 1024 * 1024);
    }
    if (dry_run) {  // distributed: the step time of this many ranks
      opt.resume.clear();
      opt.run_dir = (std::filesystem::temp_directory_path() / "mdm-train-dry-run").string();
      mdm::train::Trainer trainer(config, opt);
      const auto timing = trainer.time_steps(2);
      if (group && group->rank() != 0) return 0;
      for (size_t i = 0; i < timing.seconds.size(); ++i) {
        std::cout << fmt::format("step {}: {:.3f} s ({:.1f} img/s)\n", i + 1, timing.seconds[i],
                                 timing.images_per_step / timing.seconds[i]);
      }
      std::cout << fmt::format("peak RSS {:.0f} MiB; {} images per step; {} parameters\n", timing.peak_rss_mib,
                               timing.images_per_step, mdm::count_parameters(*trainer.model()));
      return 0;
    }
    mdm::util::StopSignal signals;
    opt.stop = &mdm::util::StopSignal::flag();
    mdm::train::Trainer trainer(config, opt);
    const auto result = trainer.run();
    std::cout << fmt::format("{} at step {}; checkpoint: {}\n", result.finished ? "finished" : "stopped", result.step,
                             result.last_checkpoint);
  } catch (const mdm::DistributedError& e) {
    exit_distributed(e.what());  // already reported to the other ranks where a group exists
  } catch (const std::exception& e) {
    if (group) exit_distributed(group->report_failure(fmt::format("rank {}: {}", group->rank(), e.what())));
    std::cerr << "mdm-train: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
