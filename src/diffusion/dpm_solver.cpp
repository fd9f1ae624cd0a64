// DPM-Solver++(2M) (Lu et al. 2022), the multistep second-order solver with data (x0) predictions, in
// h = λ_s − λ_t where λ = log(α/σ) = ½·log SNR, α = √γ, σ = √(1 − γ):
//   first step:  z_s = (σ_s/σ_t)·z_t − α_s·(e^{−h} − 1)·x0
//   later steps: r = h_prev/h, D = (1 + 1/(2r))·x0 − (1/(2r))·x0_prev, the same update with D.
// The final step to t = 0 (σ = 0) returns the data prediction itself (first order there).
#include <mdm/diffusion/sampler.h>

#include <cmath>

namespace mdm {
namespace {

class DpmSolverPP : public Sampler {
 public:
  void reset(size_t levels) override { history_.assign(levels, {}); }

  torch::Tensor update(size_t level, const torch::Tensor& z_t, const torch::Tensor& x0, double gt, double gs, bool /*last*/,
                       NoiseSource&) override {
    auto& h = history_.at(level);
    if (gs >= 1.0) return x0;  // σ_s = 0: the chain ends on the data prediction
    const double lambda_t = 0.5 * (std::log(gt) - std::log1p(-gt));
    const double lambda_s = 0.5 * (std::log(gs) - std::log1p(-gs));
    const double step = lambda_s - lambda_t;
    torch::Tensor d = x0;
    if (h.x0_prev.defined()) {
      const double r = h.step_prev / step;
      d = (1.0 + 0.5 / r) * x0 - (0.5 / r) * h.x0_prev;
    }
    const double sigma_ratio = std::sqrt((1.0 - gs) / (1.0 - gt));
    auto z_s = sigma_ratio * z_t - std::sqrt(gs) * std::expm1(-step) * d;
    h.x0_prev = x0;
    h.step_prev = step;
    return z_s;
  }

 private:
  struct History {
    torch::Tensor x0_prev;
    double step_prev = 0.0;
  };
  std::vector<History> history_;
};

}  // namespace

std::unique_ptr<Sampler> make_dpm_solver_pp() { return std::make_unique<DpmSolverPP>(); }

}  // namespace mdm
