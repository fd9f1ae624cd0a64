// Training checkpoints (docs/architecture.md "Checkpoint format"): RUN_DIR/step_NNNNNNNN/ holds config.yaml,
// model.safetensors, ema.safetensors, optimizer.safetensors and state.json; RUN_DIR/last is a symlink to the
// newest; only the newest `keep` are kept. state.json carries everything else exact resume needs.
#pragma once

#include <mdm/config/config.h>
#include <mdm/train/adam.h>
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mdm::train {

struct TrainState {
  int64_t step = 0;          // optimizer steps done (global)
  int64_t stage = 0;         // index into train.stages of the stage the next step belongs to
  double lr = 0;             // the learning rate of the last step
  int64_t data_epoch = 0;    // the data loader's position after the last batch used
  int64_t data_cursor = 0;
  std::vector<uint8_t> rng;          // the trainer's generator (timesteps, noise, condition dropout)
  std::vector<uint8_t> default_rng;  // LibTorch's default CPU generator (dropout layers)
  int64_t world_size = 1;
  // A distributed run's data position of every rank, rank order (each rank reads its own share of the
  // epoch; data_epoch / data_cursor above are rank 0's). Empty for a one-process run.
  std::vector<std::pair<int64_t, int64_t>> rank_positions;
  int64_t nonfinite_steps = 0;     // steps skipped for a non-finite loss or gradient, in all
  int64_t skipped_records = 0;     // unreadable images skipped, in all
  double train_seconds = 0;        // wall time spent training up to this step, over all runs
  std::string library_version, git_describe;

  std::string to_json() const;
  static TrainState from_json(const std::string& text, const std::string& source);
};

// RUN_DIR/step_00001234
std::string checkpoint_dir_name(const std::string& run_dir, int64_t step);

// Writes the checkpoint of `state.step`, points RUN_DIR/last at it, removes all but the newest `keep`
// step_* directories. `files` (name in the checkpoint, source path) are copied in (a text model's tokenizer).
// Returns the directory written.
std::string save_training_checkpoint(const std::string& run_dir, const Config& config, const torch::nn::Module& model,
                                     const torch::nn::Module& ema, const Adam& optimizer, const TrainState& state,
                                     int64_t keep, const std::vector<std::pair<std::string, std::string>>& files = {});

// The checkpoint RUN_DIR/last points at, or "" when the run has none.
std::string latest_checkpoint(const std::string& run_dir);

struct LoadedTraining {
  std::string dir;
  Config config;
  TrainState state;
  std::map<std::string, torch::Tensor> model, ema, optimizer;
};
// Reads every file of a training checkpoint; a missing file is a CheckpointError naming it.
LoadedTraining load_training_checkpoint(const std::string& dir);

std::string base64_encode(const std::vector<uint8_t>& bytes);
std::vector<uint8_t> base64_decode(const std::string& text);  // throws mdm::Error on bad input

}  // namespace mdm::train
