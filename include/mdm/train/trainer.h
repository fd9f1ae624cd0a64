// The progressive multi-resolution trainer (MDM §3.3, Appendix B). A library class: mdm-train is a thin
// wrapper, and a C++ user can drive it with their own DataSource.
//
// One run walks train.stages in order; a stage trains the lowest k levels (k = its resolutions), running
// only the inner model of those levels (no cost for the outer ones). A stage's init_from copies a
// lower-resolution checkpoint into the inner model when the stage begins. Each step: a batch per
// gradient-accumulation round, the image pyramid, one shared t, noise per level, condition dropout, the
// Eq. 3 loss, backward; then a non-finite check, global-norm clipping, Adam(W) at the warmed-up learning
// rate, and the EMA update. Checkpoints resume bit for bit (train/train_checkpoint.h).
#pragma once

#include <mdm/config/config.h>
#include <mdm/data/data_loader.h>
#include <mdm/data/data_source.h>
#include <mdm/diffusion/multires_diffusion.h>
#include <mdm/distributed/gradient_bucketer.h>
#include <mdm/distributed/process_group.h>
#include <mdm/models/denoiser.h>
#include <mdm/text/text_encoder.h>
#include <mdm/train/adam.h>
#include <mdm/train/ema.h>
#include <mdm/train/metrics.h>
#include <mdm/train/train_checkpoint.h>
#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mdm::train {

struct TrainerOptions {
  std::string run_dir;      // where checkpoints, metrics and samples go; "" = train.output_dir/<name>
  std::string resume;       // "" = a fresh run (an error if run_dir has checkpoints), "auto" = from
                            // run_dir/last when there is one, else a checkpoint directory
  int64_t max_steps = -1;   // stop after this global step, saving a checkpoint; -1 = the end of the last stage
  std::string device = "cpu";                 // cpu | cuda | cuda:N
  std::shared_ptr<data::DataSource> data;     // null: open config.data
  const std::atomic<bool>* stop = nullptr;    // when it becomes true: finish the step, save, return
  int64_t max_nonfinite_steps = 10;           // this many non-finite steps in a row stop the run
  bool write_samples = true;                  // sample grids and the loss curve every train.sample_every
  int64_t sample_count = 8;                   // images in a sample grid
  // Called after every step (tests use it to request a stop at a chosen step).
  std::function<void(int64_t step)> on_step;
  // A data-parallel run (docs/distributed.md): the process group, null for one process. train.batch_size
  // is the global batch, split over the ranks; each rank reads its own share of the data; rank 0 alone
  // writes checkpoints, metrics and samples.
  std::shared_ptr<distributed::ProcessGroup> process_group;
  distributed::BucketOptions buckets;  // gradient buckets of a data-parallel run
  // Draw t, noise and condition dropout per sample (train/sample_draws.h), as every data-parallel run
  // does, so that one process reproduces an N-rank run of the same global batch. Off: one sequential
  // generator, as before.
  bool per_sample_draws = false;
  // Prepare each gradient-accumulation round's batch and random draws (t, noise, condition dropout) while
  // the round before it runs: right after its backward has been queued, so that on a GPU the host's part
  // (~40–70 ms of noise on one core for a 256² batch of 32) overlaps the device's work instead of leaving
  // the device idle. The batches, the draws and the checkpoints are the same either way.
  bool prepare_ahead = true;
  // On CUDA devices: cuDNN's benchmark mode (it times the convolution algorithms once per shape and keeps
  // the fastest; a training run has few shapes) and TF32 for float32 matmuls and convolutions.
  bool cudnn_benchmark = true;
  bool tf32 = false;
};

struct TrainResult {
  int64_t step = 0;              // the global step reached
  bool finished = false;         // every stage done
  bool stopped = false;          // stopped by options.stop
  std::string last_checkpoint;   // the newest checkpoint directory written ("" when none)
  int64_t nonfinite_steps = 0;   // steps skipped for a non-finite loss or gradient
  int64_t skipped_records = 0;   // unreadable images skipped by the data loader
  double seconds = 0;            // wall time of this run() call
};

struct StepTiming {
  std::vector<double> seconds;  // per step
  double peak_rss_mib = 0;      // of the process, after the steps
  int64_t images_per_step = 0;
};

class DataParallel;

class Trainer {
 public:
  // Builds the model, EMA and optimizer, opens the data and restores a checkpoint when resuming.
  // Throws ConfigError / CheckpointError / mdm::Error naming what is wrong.
  Trainer(Config config, TrainerOptions options);
  ~Trainer();

  TrainResult run();
  // Runs `steps` steps of the first stage to be trained, writing nothing; for --dry-run and benchmarks.
  StepTiming time_steps(int64_t steps);

  const Config& config() const { return config_; }
  const std::string& run_dir() const { return run_dir_; }
  int64_t step() const { return state_.step; }
  int64_t total_steps() const;
  std::shared_ptr<Denoiser> model() const { return model_; }
  std::shared_ptr<Denoiser> ema_model() const { return ema_->shared(); }
  const Adam& optimizer() const { return *optimizer_; }

 private:
  struct StepStats;
  struct RoundInputs;  // a round's batch and draws on the host (src/train/round_inputs.h)
  size_t stage_of(int64_t step) const;
  void enter_stage(size_t stage);
  StepStats train_step();
  // The batch and draws of round `round` of step `step`: the ones prepared ahead when they are for that
  // round, else read and drawn now (src/train/round_inputs.cpp).
  std::unique_ptr<RoundInputs> take_round(int64_t step, int64_t round);
  std::unique_ptr<RoundInputs> prepare_round(int64_t step, int64_t round);
  // After round `round` of step `step` is queued: prepares the next round when it belongs to the same stage
  // and to a step before prepare_until_.
  void prepare_next_round(int64_t step, int64_t round);
  // Opens a loader with loader_options_ at the position after the last round used. A round prepared
  // ahead is forgotten: the generator goes back to its state before that round's draws, and the new
  // loader reads its records again.
  void reopen_loader();
  // The trainer generator's state and the loader's skipped-record count as of the last round used (a
  // round prepared ahead has advanced both): what a checkpoint records.
  std::vector<uint8_t> generator_state_used();
  int64_t skipped_records_used() const;
  // `drop`: which samples lose their condition; undefined = drawn here from the trainer's generator.
  Conditioning condition(const data::Batch& batch, int64_t count, const torch::Tensor& drop = {});
  void save(TrainResult& result);
  void write_samples();
  void resume_from(const std::string& dir);

  Config config_;
  TrainerOptions options_;
  std::string run_dir_;
  torch::Device device_;
  bool autocast_ = false;
  std::shared_ptr<Denoiser> model_;
  std::shared_ptr<Denoiser> active_;  // the inner model of the current stage
  size_t active_levels_ = 0;
  std::unique_ptr<Ema> ema_;
  std::unique_ptr<Adam> optimizer_;
  MultiResDiffusion diffusion_;
  std::shared_ptr<data::DataSource> data_;
  std::shared_ptr<const text::Tokenizer> tokenizer_;   // text models
  std::shared_ptr<text::TextEncoder> text_encoder_;    // over model_ (a trained encoder is its submodule)
  std::shared_ptr<text::TextEncoder> ema_text_encoder_;  // over the EMA model (the same one when frozen)
  std::unique_ptr<data::DataLoader> loader_;
  data::LoaderOptions loader_options_;  // the current stage's
  std::unique_ptr<RoundInputs> ahead_;  // the next round, prepared while the last one ran
  int64_t prepare_until_ = 0;           // no round of this step or a later one is prepared ahead
  at::Generator gen_;
  TrainState state_;
  std::unique_ptr<MetricsLog> metrics_;
  int64_t nonfinite_in_a_row_ = 0;
  int64_t skipped_records_base_ = 0;  // from the checkpoint resumed
  std::unique_ptr<DataParallel> dp_;  // a data-parallel run; null for one process
};

}  // namespace mdm::train
