// What one gradient-accumulation round of the trainer takes from the host: its batch and its random draws.
// Private to the trainer (trainer.cpp, round_inputs.cpp).
#pragma once

#include <mdm/data/data_loader.h>
#include <mdm/train/trainer.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mdm::train {

struct Trainer::RoundInputs {
  int64_t step = -1, round = -1;   // the round these are for
  data::Batch batch;               // images [B, 3, R, R] uint8; pinned when the trainer's device is CUDA
  torch::Tensor t;                 // [B] int64 in [1, N]
  torch::Tensor drop;              // [B] bool, where the condition is dropped; undefined for unconditional models
  std::vector<torch::Tensor> eps;  // per active level [B, C, R_l, R_l] float on the host; undefined where
                                   // diffusion.shared_noise derives a level from the one above
  double data_seconds = 0;         // how long the loader made us wait for the batch
  // Before this round was read and drawn: the trainer generator's state and the loader's skipped-record
  // count (what a checkpoint taken while this round waits must record).
  std::vector<uint8_t> rng_before;
  int64_t skipped_before = 0;
};

// A CPU generator's state as bytes (what state.json records), and back; `what` names it in errors.
std::vector<uint8_t> generator_state(at::Generator& gen);
void set_generator_state(at::Generator& gen, const std::vector<uint8_t>& bytes, const std::string& what);

}  // namespace mdm::train
