// Adam / AdamW with its state keyed by parameter name, so the moments go into optimizer.safetensors and
// come back bit for bit on resume, in LibTorch 1.13 and 2.x alike (LibTorch's own optimizer keys its state
// by TensorImpl address, differently across versions). The update is torch.optim.Adam's algorithm (amsgrad
// off) step for step: with LibTorch's fused Adam kernel where it has one (CUDA from LibTorch 2.0, the CPU
// from 2.4: one pass over parameters, gradients and moments, as torch.optim.Adam(fused=True)), else like
// its foreach implementation, multi-tensor ops over lists of parameters (LibTorch 1.13).
#pragma once

#include <mdm/config/config.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mdm::train {

class Adam {
 public:
  // `params`: (name, parameter) in a fixed order; `options`: name adam (L2 weight decay added to the
  // gradient) or adamw (decoupled decay), lr, betas, eps, weight_decay.
  Adam(std::vector<std::pair<std::string, torch::Tensor>> params, const OptimizerConfig& options);

  // One update of every parameter that has a gradient, at learning rate `lr`. Parameters without a
  // gradient (levels a progressive stage does not train) keep their value and their moments.
  void step(double lr);
  void zero_grad();

  // Moments and per-parameter step counts: NAME.exp_avg, NAME.exp_avg_sq, NAME.step (float64 scalar).
  std::vector<std::pair<std::string, torch::Tensor>> state_dict() const;
  // Restores state_dict(); a tensor of an unknown parameter, or a shape that does not fit, is an error
  // (mdm::CheckpointError naming it and `source`). Parameters absent from `tensors` start fresh.
  void load_state_dict(const std::map<std::string, torch::Tensor>& tensors, const std::string& source);

  const std::vector<std::pair<std::string, torch::Tensor>>& params() const { return params_; }

  // Whether step() may use the fused kernel (default true); off, it runs the _foreach_ ops everywhere.
  // The two agree to float32 round-off (tests; the A/B of a benchmark).
  void set_fused(bool on) { fused_ = on; }
  bool fused() const { return fused_; }

 private:
  struct State {
    torch::Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<State> state_;
  OptimizerConfig options_;
  bool decoupled_;
  bool fused_ = true;
};

// The reference's learning-rate factor (lr_scaler.py): linear warmup max(1, step)/warmup while
// step < warmup, then constant 1. `step` counts optimizer steps from 0.
double warmup_factor(int64_t step, int64_t warmup_steps);

// The global L2 norm of every defined gradient (per-tensor norms combined in float64), scaled down to `max_norm` when
// above it (torch.nn.utils.clip_grad_norm_: coefficient max_norm / (norm + 1e-6)); max_norm ≤ 0 only
// measures. Returns the norm before clipping (inf / nan when a gradient is not finite: nothing is scaled).
double clip_grad_norm(const std::vector<std::pair<std::string, torch::Tensor>>& params, double max_norm);

}  // namespace mdm::train
