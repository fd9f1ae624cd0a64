// Sampling all resolution levels jointly (formulas.md "Samplers"; MDM Appendix C): one network call per
// step returns every level; each level then takes its own update with its own (shifted) schedule.
// A sampler is a small class over (level, z_t, x0, γ_t, γ_s): ancestral_sampler.cpp, ddim_sampler.cpp,
// dpm_solver.cpp; this file's driver does the rest (time steps, x0 and thresholding, callback).
#pragma once

#include <mdm/diffusion/noise_source.h>
#include <mdm/diffusion/parameterization.h>
#include <mdm/diffusion/schedule.h>
#include <mdm/diffusion/threshold.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mdm {

// The network at schedule index t (it sees the step index t − 1): z per level (lowest first) →
// its raw output per level, guidance already applied.
using DenoiseFn = std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>& z, int64_t t)>;

struct StepInfo {
  int64_t step = 0, total = 0;  // 1-based step count
  int64_t t = 0, s = 0;         // from schedule index t to s
  const std::vector<torch::Tensor>* x0 = nullptr;  // the thresholded x0 prediction per level
};

struct SamplerOptions {
  std::string sampler = "ancestral";  // ancestral | ddim | dpmsolver++
  int64_t steps = 250;
  double eta = 1.0;  // DDIM: 0 = deterministic, 1 = ancestral-like noise
  // Time steps (schedule.h): reference | trailing | auto = reference for ancestral (the reference's own
  // chain), trailing for ddim and dpmsolver++ (few steps must start at t = N).
  std::string spacing = "auto";
  bool clip_output = true;  // clamp the final sample to [−1, 1] (pixels); off for latents
  Prediction prediction = Prediction::V;
  ThresholdOptions threshold;
  // Called after every step; returning false stops sampling with mdm::Cancelled.
  std::function<bool(const StepInfo&)> callback;
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual void reset(size_t levels) {}
  // One update of one level from z_t to z_s given the (thresholded) x0 prediction; `last` is the final step.
  virtual torch::Tensor update(size_t level, const torch::Tensor& z_t, const torch::Tensor& x0, double gamma_t,
                               double gamma_s, bool last, NoiseSource& noise) = 0;
};

std::unique_ptr<Sampler> make_ancestral_sampler();
std::unique_ptr<Sampler> make_ddim_sampler(double eta);
std::unique_ptr<Sampler> make_dpm_solver_pp();
// By name; throws ConfigError on an unknown one.
std::unique_ptr<Sampler> make_sampler(const SamplerOptions& options);
// The spacing `auto` resolves to for a sampler.
std::string resolve_spacing(const SamplerOptions& options);

// Runs the chain from z (one initial noise tensor per level, lowest first) down to t = 0 and returns
// the final sample of every level, clamped to [−1, 1]. schedules: one per level, same num_steps.
// `sampler` replaces the one options.sampler names (for custom update rules).
std::vector<torch::Tensor> run_sampler(const DenoiseFn& denoise, const std::vector<NoiseSchedule>& schedules,
                                       std::vector<torch::Tensor> z, const SamplerOptions& options,
                                       NoiseSource& noise, Sampler* sampler = nullptr);

}  // namespace mdm
