// The reference's default sampler: the DDPM posterior q(z_s | z_t, x0) (formulas.md "ancestral"):
//   α = γ_t/γ_s, β = 1 − α, β̃ = β(1 − γ_s)/(1 − γ_t),
//   z_s = x0·β·√γ_s/(1 − γ_t) + z_t·√α·(1 − γ_s)/(1 − γ_t) + √β̃·n   (no noise on the last step).
#include <mdm/diffusion/sampler.h>

#include <cmath>

namespace mdm {
namespace {

class AncestralSampler : public Sampler {
 public:
  torch::Tensor update(size_t, const torch::Tensor& z_t, const torch::Tensor& x0, double gt, double gs, bool last,
                       NoiseSource& noise) override {
    const double alpha = gt / gs, beta = 1.0 - alpha;
    const double beta_tilde = beta * (1.0 - gs) / (1.0 - gt);
    auto z_s = x0 * (beta * std::sqrt(gs) / (1.0 - gt)) + z_t * (std::sqrt(alpha) * (1.0 - gs) / (1.0 - gt));
    if (!last && beta_tilde > 0) z_s = z_s + std::sqrt(beta_tilde) * noise.normal(z_t);
    return z_s;
  }
};

}  // namespace

std::unique_ptr<Sampler> make_ancestral_sampler() { return std::make_unique<AncestralSampler>(); }

}  // namespace mdm
