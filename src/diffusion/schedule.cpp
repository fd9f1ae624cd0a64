#include <mdm/diffusion/schedule.h>
#include <mdm/util/error.h>

#include <fmt/format.h>

#include <cfenv>
#include <cmath>
#include <regex>

namespace mdm {
namespace {

constexpr double kPi = 3.14159265358979323846;
// Continuous schedules reach γ = 0 at t = 1; clamp λ to the discrete cosine's own end (λ(γ_1000) ≈ −19.84).
constexpr double kMinGamma = 2.4e-9;

// Stable Diffusion's "scaled linear" betas (DiMR, U-ViT's latent models): β = linspace(√0.00085, √0.012, N)².
constexpr double kScaledLinearStart = 0.00085, kScaledLinearEnd = 0.012;

double cosine_alpha_bar(double tau) {
  const double c = std::cos((tau + 0.008) / 1.008 * kPi / 2.0);
  return c * c;
}

}  // namespace

double shift_gamma(double gamma, double s) {
  if (s == 1.0 || gamma >= 1.0) return gamma;
  return 1.0 / (1.0 + (1.0 - gamma) * s / gamma);
}

NoiseSchedule::NoiseSchedule(const std::string& name, int64_t num_steps, double shift_power)
    : name_(name), num_steps_(num_steps) {
  static const std::regex re("^(cosine|linear|scaled-linear)(?:-shift([1-9][0-9]*))?$");
  std::smatch m;
  if (!std::regex_match(name, m, re)) {
    throw ConfigError(fmt::format("noise schedule '{}' is not known (cosine | linear | scaled-linear, optionally -shiftK)", name));
  }
  if (num_steps < 0) throw ConfigError(fmt::format("noise schedule '{}': num_steps must not be negative", name));
  base_ = m[1];
  if (m[2].matched) shift_ = std::pow(std::stod(m[2]), shift_power);
  if (num_steps_ == 0) return;

  const int64_t N = num_steps_;
  gammas_.resize(N + 1);
  gammas_[0] = 1.0;
  double g = 1.0;
  for (int64_t i = 1; i <= N; ++i) {
    double beta;
    if (base_ == "cosine") {
      beta = std::min(1.0 - cosine_alpha_bar(static_cast<double>(i) / N) / cosine_alpha_bar(static_cast<double>(i - 1) / N), 0.999);
    } else if (base_ == "scaled-linear") {
      const double a = std::sqrt(kScaledLinearStart), b = std::sqrt(kScaledLinearEnd);
      const double r = a + (b - a) * (N == 1 ? 0.0 : static_cast<double>(i - 1) / (N - 1));
      beta = r * r;
    } else {
      beta = 1e-4 + (0.02 - 1e-4) * (N == 1 ? 0.0 : static_cast<double>(i - 1) / (N - 1));
    }
    g *= 1.0 - beta;
    gammas_[i] = g;
  }
  for (auto& v : gammas_) v = shift_gamma(v, shift_);
}

double NoiseSchedule::gamma(int64_t k) const {
  if (continuous()) throw Error(fmt::format("schedule '{}' is continuous: it has no step table (use gamma_at)", name_));
  if (k < 0 || k > num_steps_) throw Error(fmt::format("schedule '{}': step {} outside [0, {}]", name_, k, num_steps_));
  return gammas_[k];
}

double NoiseSchedule::logsnr(int64_t k) const {
  const double g = gamma(k);
  return std::log(g) - std::log1p(-g);
}

double NoiseSchedule::base_gamma_continuous(double t) const {
  double g;
  if (base_ == "cosine") {
    g = cosine_alpha_bar(t) / cosine_alpha_bar(0.0);
  } else if (base_ == "scaled-linear") {
    // The limit of the discrete scaled-linear schedule with N = 1000: √β(τ) = a + (b − a)τ per step, so
    // log γ(t) = −1000·∫₀ᵗ β = −1000·(a²t + a(b − a)t² + (b − a)²t³/3).
    const double a = std::sqrt(kScaledLinearStart), d = std::sqrt(kScaledLinearEnd) - a;
    g = std::exp(-(a * a * t + a * d * t * t + d * d * t * t * t / 3.0) * 1000.0);
  } else {
    // The limit of the discrete linear schedule with N = 1000: log γ(t) = −(β₀·t + ½(β₁ − β₀)·t²)·1000.
    g = std::exp(-(1e-4 * t + 0.5 * (0.02 - 1e-4) * t * t) * 1000.0);
  }
  return std::max(g, kMinGamma);
}

double NoiseSchedule::gamma_at(double t) const {
  t = std::clamp(t, 0.0, 1.0);
  if (continuous()) return t == 0.0 ? 1.0 : shift_gamma(base_gamma_continuous(t), shift_);
  const double pos = t * static_cast<double>(num_steps_);
  const int64_t k = std::min<int64_t>(static_cast<int64_t>(std::floor(pos)), num_steps_ - 1);
  const double frac = pos - static_cast<double>(k);
  return gammas_[k] + (gammas_[k + 1] - gammas_[k]) * frac;
}

double NoiseSchedule::logsnr_at(double t) const {
  const double g = gamma_at(t);
  return std::log(g) - std::log1p(-g);
}

std::vector<int64_t> sampling_timesteps(int64_t num_train_steps, int64_t steps, const std::string& spacing) {
  if (steps < 1 || steps > num_train_steps) {
    throw Error(fmt::format("sampling: steps must be in [1, {}], got {}", num_train_steps, steps));
  }
  if (spacing != "reference" && spacing != "trailing") {
    throw ConfigError(fmt::format("time-step spacing '{}' is not known (reference | trailing)", spacing));
  }
  const double ratio = spacing == "trailing" ? static_cast<double>(num_train_steps) / static_cast<double>(steps)
                                             : static_cast<double>(num_train_steps + 1) / static_cast<double>(steps + 1);
  std::vector<int64_t> out;
  const int saved = std::fegetround();
  std::fesetround(FE_TONEAREST);  // nearbyint: half to even, as numpy's round
  for (int64_t i = steps; i >= 0; --i) out.push_back(static_cast<int64_t>(std::nearbyint(static_cast<double>(i) * ratio)));
  std::fesetround(saved);
  return out;
}

}  // namespace mdm
