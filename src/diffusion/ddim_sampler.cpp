// DDIM(η) (Song et al. 2021; formulas.md): ε = (z_t − √γ_t·x0)/√(1 − γ_t), β̃' = η²·β̃,
//   z_s = √γ_s·x0 + √(1 − γ_s − β̃')·ε + √β̃'·n;  η = 0 is deterministic.
#include <mdm/diffusion/sampler.h>

#include <algorithm>
#include <cmath>

namespace mdm {
namespace {

class DdimSampler : public Sampler {
 public:
  explicit DdimSampler(double eta) : eta_(eta) {}

  torch::Tensor update(size_t, const torch::Tensor& z_t, const torch::Tensor& x0, double gt, double gs, bool last,
                       NoiseSource& noise) override {
    const auto eps = (z_t - std::sqrt(gt) * x0) / std::sqrt(1.0 - gt);
    const double beta_tilde = (1.0 - gt / gs) * (1.0 - gs) / (1.0 - gt);
    const double var = eta_ * eta_ * beta_tilde;
    auto z_s = std::sqrt(gs) * x0 + std::sqrt(std::max(1.0 - gs - var, 0.0)) * eps;
    if (!last && var > 0) z_s = z_s + std::sqrt(var) * noise.normal(z_t);
    return z_s;
  }

 private:
  double eta_;
};

}  // namespace

std::unique_ptr<Sampler> make_ddim_sampler(double eta) { return std::make_unique<DdimSampler>(eta); }

}  // namespace mdm
