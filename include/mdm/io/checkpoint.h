// A checkpoint directory (docs/architecture.md "Checkpoint format"): config.yaml (the resolved config),
// model.safetensors and/or ema.safetensors (the reference's state-dict keys), state.json (step, …).
// Written to DIR.tmp and renamed into place, so a checkpoint is either complete or absent.
#pragma once

#include <mdm/config/config.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mdm::io {

struct CheckpointInfo {
  std::string dir;
  Config config;
  std::string weights_file;  // the tensors to sample with: ema.safetensors if present, else model.safetensors
  int64_t step = 0;          // from state.json (0 when absent)
  std::string tokenizer_file;  // tokenizer.model / tokenizer.vocab of a text model, when the checkpoint carries one
};

// Reads and checks config.yaml and state.json and finds the weights; throws CheckpointError / ConfigError
// naming the directory and the file at fault.
CheckpointInfo read_checkpoint_info(const std::string& dir);

// What a training checkpoint adds: the optimizer's tensors (optimizer.safetensors) and its own state.json.
struct CheckpointExtras {
  std::vector<std::pair<std::string, torch::Tensor>> optimizer;  // written when not empty
  std::string state_json;  // replaces the default {"step", "library_version"} when not empty
  std::vector<std::pair<std::string, std::string>> files;  // (name in the checkpoint, source path): copied in
};

// Writes config.yaml, model.safetensors (and ema.safetensors when `ema` is given) and state.json into
// DIR.tmp, fsyncs every file and the directory, then renames it to DIR (an existing DIR is replaced only
// once the new one is complete).
void save_checkpoint(const std::string& dir, const Config& config, const torch::nn::Module& model, int64_t step,
                     const torch::nn::Module* ema = nullptr, const CheckpointExtras& extras = {});

// fsync of a file or directory (durability before a rename); throws CheckpointError naming it.
void fsync_path(const std::string& path);

}  // namespace mdm::io
