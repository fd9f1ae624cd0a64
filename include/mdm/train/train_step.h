// The two halves of one training step (MDM §3.3, Eq. 3), shared by the Trainer and the benchmarks
// (perf/bench.h), so that what mdm-bench times is what mdm-train runs.
#pragma once

#include <mdm/diffusion/multires_diffusion.h>
#include <mdm/models/denoiser.h>
#include <mdm/train/adam.h>
#include <mdm/train/ema.h>
#include <torch/torch.h>

namespace mdm::train {

// The forward half: the network on the noisy levels (it sees the step index t − 1) under bf16 CUDA
// autocast when `autocast`, and Eq. 3's loss over the lowest `levels` levels. Call backward() on .loss.
LossOutput training_loss(Denoiser& model, const MultiResDiffusion& diffusion, const NoisyBatch& noisy,
                         const Conditioning& cond, size_t levels, bool autocast);

struct UpdateStats {
  double grad_norm = 0;  // before clipping (inf / nan when a gradient is not finite)
  bool finite = true;    // false: the update was skipped
};

// The update half, after backward: when the loss is finite, global-norm clipping to `grad_clip` (one host
// read: the norm), then — when the norm is finite too — Adam(W) at `lr` and the EMA update of `ema` towards
// `model`; the gradients are cleared in every case.
UpdateStats optimizer_update(Adam& optimizer, Ema& ema, const torch::nn::Module& model, double lr, double grad_clip,
                             bool loss_finite);

}  // namespace mdm::train
