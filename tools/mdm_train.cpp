// mdm-train: train a Matryoshka Diffusion Model (progressive stages, checkpoints, exact resume).
#include <mdm/mdm.h>
#include <mdm/train/trainer.h>
#include <mdm/util/stop_signal.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"mdm-train: train a Matryoshka Diffusion Model"};
  std::string config_path;
  std::vector<std::string> overrides;
  mdm::train::TrainerOptions opt;
  bool print_config = false, dry_run = false;
  app.add_option("-c,--config", config_path, "run config (YAML); with --resume DIR it defaults to DIR/config.yaml");
  app.add_option("--set", overrides, "override a config key: --set train.optimizer.lr=3e-4 (repeatable)");
  app.add_option("-o,--output-dir", opt.run_dir, "run directory (default: train.output_dir/<name>)");
  app.add_option("--resume", opt.resume, "auto (continue RUN_DIR/last when present) or a checkpoint directory");
  app.add_option("--max-steps", opt.max_steps, "stop after this global step, with a checkpoint");
  app.add_option("--device", opt.device, "cpu | cuda | cuda:N");
  app.add_flag("--print-config", print_config, "print the resolved config and exit");
  app.add_flag("--dry-run", dry_run, "build everything, run two steps, print time and peak memory per step");
  CLI11_PARSE(app, argc, argv);
  try {
    if (config_path.empty()) {
      if (opt.resume.empty() || opt.resume == "auto") throw mdm::ConfigError("--config is required (or --resume DIR)");
      config_path = (std::filesystem::path(opt.resume) / "config.yaml").string();
    }
    mdm::Config config = mdm::load_config(config_path, overrides);
    if (print_config) {
      std::cout << mdm::to_yaml(config);
      return 0;
    }
    if (dry_run) {
      opt.resume.clear();
      opt.run_dir = (std::filesystem::temp_directory_path() / "mdm-train-dry-run").string();
      mdm::train::Trainer trainer(config, opt);
      const auto timing = trainer.time_steps(2);
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
  } catch (const std::exception& e) {
    std::cerr << "mdm-train: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
