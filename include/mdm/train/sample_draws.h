// Per-sample random draws for a training round: each sample's timestep t, condition-dropout coin and noise
// of every level come from a generator keyed by (seed, step, the sample's slot in the global batch). The
// draws of a sample then do not depend on how the global batch is split over ranks or accumulation rounds,
// so N data-parallel ranks train as one process does (to fp32 round-off). A distributed run always draws
// this way; a one-process run does with TrainerOptions::per_sample_draws (mdm-train --per-sample-draws),
// and otherwise keeps the single sequential generator of earlier versions.
#pragma once

#include <mdm/diffusion/multires_diffusion.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace mdm::train {

struct SampleDraws {
  torch::Tensor t;                 // [B] int64 in [1, N]
  torch::Tensor drop;              // [B] bool: the condition is dropped (classifier-free guidance)
  std::vector<torch::Tensor> eps;  // per level, [B, C, R, R] float on the CPU, like x0's levels
};

// The global slots of a rank's samples in one round: round·per_round + rank + world·k for k < count (the
// data loader gives rank r the records r, r + W, r + 2W, ... of the epoch's order, so a slot is the
// sample's place in the one-process batch).
std::vector<int64_t> round_slots(int64_t round, int64_t per_round, int64_t rank, int64_t world, int64_t count);

// Draws for samples at `slots` of step `step`; x0_shapes: one [C, R, R] per level (lowest first). Per sample,
// in this order: t (MultiResDiffusion::sample_t), the dropout coin (condition_dropout_mask with
// `dropout`), the noise of each level.
SampleDraws per_sample_draws(const MultiResDiffusion& diffusion, const std::vector<std::vector<int64_t>>& x0_shapes,
                             double dropout, uint64_t seed, int64_t step, const std::vector<int64_t>& slots);

}  // namespace mdm::train
