// The multi-resolution diffusion process of MDM (§3.1, Eq. 3): the image pyramid D^r(x) of every level,
// noising of every level at one shared t with independent noise, each level on its own (shifted)
// schedule, and the multi-resolution loss. Levels are ordered lowest resolution first.
#pragma once

#include <mdm/config/config.h>
#include <mdm/diffusion/parameterization.h>
#include <mdm/diffusion/schedule.h>
#include <torch/torch.h>

#include <vector>

namespace mdm {

struct NoisyBatch {
  std::vector<torch::Tensor> x0;     // clean image per level
  std::vector<torch::Tensor> eps;    // the noise per level, independent N(0, I)
  std::vector<torch::Tensor> z;      // √γ·x0 + √(1−γ)·ε per level
  std::vector<torch::Tensor> gamma;  // γ per level, [B, 1, 1, 1]
  torch::Tensor t;                   // [B] int64 schedule index in [1, N]; the network sees t − 1
};

struct LossOutput {
  torch::Tensor loss;                 // scalar: mean over the batch of Σ_r w_r·ℓ_r
  std::vector<torch::Tensor> levels;  // ℓ_r averaged over the batch, lowest first (detached)
};

class MultiResDiffusion {
 public:
  MultiResDiffusion(const ModelConfig& model, const DiffusionConfig& diffusion);

  const std::vector<NoiseSchedule>& schedules() const { return schedules_; }  // lowest first
  const std::vector<int64_t>& resolutions() const { return resolutions_; }
  int64_t num_train_steps() const { return num_steps_; }
  Prediction prediction() const { return prediction_; }
  Prediction loss_target() const { return loss_target_; }

  // x: [B, C, R, R] at the highest resolution → one image per level, lowest first. `average`: box
  // filter with kernel = stride = ratio, applied level by level (the reference); `bilinear`: antialiased
  // bilinear resize (the paper's wording); `sum`: box sum / ratio (DiMR's multi-scale targets).
  std::vector<torch::Tensor> pyramid(const torch::Tensor& x) const;
  // The pyramid of the lowest `levels` levels from x at level levels−1's resolution (a progressive stage).
  std::vector<torch::Tensor> pyramid(const torch::Tensor& x, size_t levels) const;
  // Uniform t ∈ [1, N] per sample.
  torch::Tensor sample_t(int64_t batch, at::Generator& gen) const;
  // Noises every level given (the lowest x0.size() levels) at the shared t; eps drawn here
  // (independently per level) unless given. With diffusion.shared_noise the lower levels' noise is the
  // sum-pool pyramid of the highest given level's (given lower levels are replaced), so z of a lower level
  // is the same pyramid of the highest z.
  NoisyBatch add_noise(const std::vector<torch::Tensor>& x0, const torch::Tensor& t, at::Generator& gen) const;
  // The noise add_noise(x0, t, gen) draws, on the CPU: one tensor per shape (x0's shapes, lowest level
  // first) with `options`' dtype (and pinned memory when asked), drawn in that order; with
  // diffusion.shared_noise only the highest level's (the others are left undefined for add_noise to derive).
  // The trainer draws it ahead of the step that uses it, into pinned memory for a GPU.
  std::vector<torch::Tensor> draw_noise(const std::vector<std::vector<int64_t>>& shapes,
                                        const torch::TensorOptions& options, at::Generator& gen) const;
  NoisyBatch add_noise(const std::vector<torch::Tensor>& x0, const torch::Tensor& t,
                       const std::vector<torch::Tensor>& eps) const;
  // Eq. 3: ℓ_r = mean over C·H·W of (prediction − target)² in the loss_target space, weighted per level.
  // `levels` = how many levels, from the lowest, the loss covers (a progressive stage); 0 = all.
  LossOutput loss(const std::vector<torch::Tensor>& outputs, const NoisyBatch& batch, size_t levels = 0) const;
  // The per-level gamma table gathered at t, [B, 1, 1, 1].
  torch::Tensor gamma(size_t level, const torch::Tensor& t) const;

 private:
  std::vector<int64_t> resolutions_;
  std::vector<NoiseSchedule> schedules_;
  std::vector<torch::Tensor> gamma_tables_;  // float64 [N + 1] per level
  std::vector<double> weights_;
  std::string downsample_;
  bool shared_noise_ = false;
  int64_t num_steps_;
  Prediction prediction_, loss_target_;
};

// The r×r box sum divided by r of [B, C, H, W] (DiMR's multi-scale target, formulas.md "DiMR"): white
// noise of unit variance stays unit-variance.
torch::Tensor sum_pool(const torch::Tensor& x, int64_t ratio);

// Training-time condition dropout for classifier-free guidance: true where the condition is dropped.
torch::Tensor condition_dropout_mask(int64_t batch, double probability, at::Generator& gen);

}  // namespace mdm
