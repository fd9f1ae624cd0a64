// Noise schedules (formulas.md "Noise schedule"): γ = ᾱ = α² (signal variance), SNR = γ/(1−γ), λ = log SNR.
//   cosine         the reference's squared cosine with capped betas ("DEEPFLOYD", squaredcos_cap_v2)
//   linear         DDPM: β = linspace(1e-4, 0.02, N)
//   scaled-linear  Stable Diffusion / DiMR: β = linspace(√0.00085, √0.012, N)²
//   <base>-shiftK  the base schedule shifted in SNR space: SNR / K^p (p = diffusion.shift_power)
// Discrete: a table γ_0 = 1, γ_1 … γ_N computed in double precision. Continuous (N = 0 in the config):
// γ(t) for t ∈ [0, 1] in closed form. Both answer gamma_at(t) and logsnr_at(t), which agree with the
// discrete table at t = k/N.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace mdm {

class NoiseSchedule {
 public:
  // name: cosine | linear | scaled-linear, optionally -shiftK; num_steps N (0 = continuous time).
  // Throws mdm::ConfigError on an unknown name.
  NoiseSchedule(const std::string& name, int64_t num_steps = 1000, double shift_power = 1.0);

  const std::string& name() const { return name_; }
  int64_t num_steps() const { return num_steps_; }
  bool continuous() const { return num_steps_ == 0; }
  double shift() const { return shift_; }  // K^p (1 when unshifted)

  // Discrete table, index k ∈ [0, N] (γ_0 = 1).
  double gamma(int64_t k) const;
  const std::vector<double>& gammas() const { return gammas_; }
  double logsnr(int64_t k) const;
  // Continuous time t ∈ [0, 1]: the closed form, or for a discrete schedule the table interpolated
  // linearly in γ between t = k/N points.
  double gamma_at(double t) const;
  double logsnr_at(double t) const;

 private:
  double base_gamma_continuous(double t) const;
  double apply_shift(double g) const;

  std::string name_, base_;
  int64_t num_steps_;
  double shift_ = 1.0;
  std::vector<double> gammas_;
};

// SNR-space shift: γ' = 1 / (1 + (1 − γ)·s / γ), i.e. SNR' = SNR / s.
double shift_gamma(double gamma, double s);

// The sampling time steps of K steps out of N, largest first (K + 1 values ending at 0).
//   reference: ratio = (N + 1)/(K + 1), t_i = round(i·ratio) (half to even, as numpy), i = K … 0 — the
//              reference's chain, which starts below N when K < N (981 for K = 50).
//   trailing:  t_i = round(i·N/K): starts at t = N. Few-step samplers need it: a chain that starts at
//              t < N from pure noise carries a mean error of √γ_start·E[x] into every sample.
std::vector<int64_t> sampling_timesteps(int64_t num_train_steps, int64_t steps, const std::string& spacing = "reference");

}  // namespace mdm
