// A checkpoint directory (docs/architecture.md "Checkpoint format"): config.yaml (the resolved config),
// model.safetensors and/or ema.safetensors (the reference's state-dict keys), state.json (step, …).
// Written to DIR.tmp and renamed into place, so a checkpoint is either complete or absent.
#pragma once

#include <mdm/config/config.h>
#include <torch/torch.h>

#include <map>
#include <string>

namespace mdm::io {

struct CheckpointInfo {
  std::string dir;
  Config config;
  std::string weights_file;  // the tensors to sample with: ema.safetensors if present, else model.safetensors
  int64_t step = 0;          // from state.json (0 when absent)
};

// Reads and checks config.yaml and state.json and finds the weights; throws CheckpointError / ConfigError
// naming the directory and the file at fault.
CheckpointInfo read_checkpoint_info(const std::string& dir);

// Writes config.yaml, model.safetensors (and ema.safetensors when `ema` is given) and state.json.
void save_checkpoint(const std::string& dir, const Config& config, const torch::nn::Module& model, int64_t step,
                     const torch::nn::Module* ema = nullptr);

}  // namespace mdm::io
