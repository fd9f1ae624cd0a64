// The samplers are right, not just shaped right: with the exact denoiser of a Gaussian data
// distribution N(μ, s²I), E[x0 | z_t] = μ + √γ·s²/(γ·s² + 1 − γ)·(z_t − √γ·μ), sampling two levels
// jointly (different schedules) must reproduce μ and s within 2%.
//
// One exception is a theorem, not a bug: for Gaussian data each deterministic DDIM step multiplies the
// standard deviation by cos Δθ (θ = atan(√(1−γ)/(√γ·s)) runs from π/2 to 0), so K steps lose at least
// 1 − cos(π/2K)^K ≈ π²/(8K) of it: 2.5% for 50 steps, whatever the spacing. DDIM(η = 0) is therefore
// checked against that prediction at 50 steps and against the data within 2% at 100 steps.
#include <fmt/format.h>
#include <mdm/diffusion/sampler.h>

#include "test_util.h"

namespace mdm {
namespace {

struct Gaussian {
  double mu, s;
};

// Per level, lowest first. Sample means are estimated to ±0.45% (1σ) from 49152 / 196608 values.
const std::vector<Gaussian> kData = {{1.0, 1.0}, {-0.4, 0.8}};
const std::vector<int64_t> kSizes = {8, 16};

std::vector<NoiseSchedule> schedules() { return {NoiseSchedule("cosine", 1000), NoiseSchedule("cosine-shift2", 1000)}; }

// The exact denoiser, answering in v as the network does.
DenoiseFn exact_denoiser(const std::vector<NoiseSchedule>& sch) {
  return [&sch](const std::vector<torch::Tensor>& z, int64_t t) {
    std::vector<torch::Tensor> out;
    for (size_t l = 0; l < z.size(); ++l) {
      const double g = sch[l].gamma(t), mu = kData[l].mu, s2 = kData[l].s * kData[l].s;
      auto x0 = mu + std::sqrt(g) * s2 / (g * s2 + 1 - g) * (z[l] - std::sqrt(g) * mu);
      auto eps = (z[l] - std::sqrt(g) * x0) / std::sqrt(1 - g);
      out.push_back(std::sqrt(g) * eps - std::sqrt(1 - g) * x0);
    }
    return out;
  };
}

struct Moments {
  std::vector<double> mean, std;
};

Moments sample_moments(const SamplerOptions& opts, Sampler* custom = nullptr) {
  const int64_t batch = 256;
  const auto sch = schedules();
  std::vector<uint64_t> seeds;
  for (int64_t i = 0; i < batch; ++i) seeds.push_back(1000 + i);
  NoiseSource noise(seeds);
  std::vector<torch::Tensor> z;
  for (int64_t r : kSizes) z.push_back(noise.normal(torch::empty({batch, 3, r, r})));
  SamplerOptions o = opts;
  o.threshold = ThresholdOptions::preset("none");
  o.clip_output = false;  // the data is not confined to [−1, 1]
  auto x = run_sampler(exact_denoiser(sch), sch, z, o, noise, custom);
  Moments m;
  for (const auto& level : x) {
    m.mean.push_back(level.mean().item<double>());
    m.std.push_back(level.std().item<double>());
  }
  return m;
}

bool within_two_percent(const Moments& m) {
  for (size_t l = 0; l < kData.size(); ++l) {
    if (std::abs(m.mean[l] - kData[l].mu) > 0.02 * std::abs(kData[l].mu)) return false;
    if (std::abs(m.std[l] - kData[l].s) > 0.02 * kData[l].s) return false;
  }
  return true;
}

std::string describe(const Moments& m) {
  std::string s;
  for (size_t l = 0; l < m.mean.size(); ++l) s += fmt::format(" level {}: mean {:.4f} std {:.4f};", l, m.mean[l], m.std[l]);
  return s;
}

TEST(Sampler, Ancestral250StepsReproducesTheData) {
  SamplerOptions o;
  o.sampler = "ancestral";
  o.steps = 250;
  const auto m = sample_moments(o);
  EXPECT_TRUE(within_two_percent(m)) << describe(m);
}

// The standard deviation deterministic DDIM gives for Gaussian data: each step maps the centred
// z_t to z_s = k·z_t with k = (√(γ_s·γ_t)·s² + √((1−γ_s)(1−γ_t))) / (γ_t·s² + 1 − γ_t), from z_T ~ N(0, 1).
double ddim_std(const NoiseSchedule& sch, int64_t steps, double s) {
  const auto ts = sampling_timesteps(1000, steps, "trailing");
  double k = 1.0;
  for (size_t i = 0; i + 1 < ts.size(); ++i) {
    const double gt = sch.gamma(ts[i]), gs = sch.gamma(ts[i + 1]);
    k *= (std::sqrt(gs * gt) * s * s + std::sqrt((1 - gs) * (1 - gt))) / (gt * s * s + 1 - gt);
  }
  return k;
}

TEST(Sampler, Ddim50StepsDeterministicGivesItsPredictedShrinkage) {
  SamplerOptions o;
  o.sampler = "ddim";
  o.eta = 0.0;
  o.steps = 50;
  const auto m = sample_moments(o);
  const auto sch = schedules();
  for (size_t l = 0; l < 2; ++l) {
    EXPECT_NEAR(m.mean[l], kData[l].mu, 0.02 * std::abs(kData[l].mu)) << describe(m);
    const double predicted = ddim_std(sch[l], 50, kData[l].s);
    EXPECT_LT(predicted, 0.98 * kData[l].s);                     // the theorem's 2.5% at least
    EXPECT_NEAR(m.std[l], predicted, 0.005 * predicted) << describe(m);  // and exactly that, no more
  }
}

TEST(Sampler, Ddim100StepsDeterministicReproducesTheData) {
  SamplerOptions o;
  o.sampler = "ddim";
  o.eta = 0.0;
  o.steps = 100;
  const auto m = sample_moments(o);
  EXPECT_TRUE(within_two_percent(m)) << describe(m);
}

TEST(Sampler, DdimWithNoiseReproducesTheData) {
  SamplerOptions o;
  o.sampler = "ddim";
  o.eta = 1.0;
  o.steps = 250;
  const auto m = sample_moments(o);
  EXPECT_TRUE(within_two_percent(m)) << describe(m);
}

TEST(Sampler, DpmSolverPP20StepsReproducesTheData) {
  SamplerOptions o;
  o.sampler = "dpmsolver++";
  o.steps = 20;
  const auto m = sample_moments(o);
  EXPECT_TRUE(within_two_percent(m)) << describe(m);
}

// The ancestral update with a plausible-looking mistake: the z_t coefficient without √α.
class BrokenAncestral : public Sampler {
 public:
  torch::Tensor update(size_t, const torch::Tensor& z_t, const torch::Tensor& x0, double gt, double gs, bool last,
                       NoiseSource& noise) override {
    const double beta = 1 - gt / gs, beta_tilde = beta * (1 - gs) / (1 - gt);
    auto z_s = x0 * (beta * std::sqrt(gs) / (1 - gt)) + z_t * ((1 - gs) / (1 - gt));
    if (!last) z_s = z_s + std::sqrt(beta_tilde) * noise.normal(z_t);
    return z_s;
  }
};

TEST(Sampler, ABrokenUpdateRuleFailsTheCheck) {
  SamplerOptions o;
  o.steps = 250;
  BrokenAncestral broken;
  const auto m = sample_moments(o, &broken);
  EXPECT_FALSE(within_two_percent(m)) << describe(m);
}

TEST(Sampler, SameSeedsSameSamplesWhateverTheBatch) {
  const auto sch = schedules();
  SamplerOptions o;
  o.steps = 10;
  auto run = [&](std::vector<uint64_t> seeds) {
    NoiseSource noise(seeds);
    const int64_t b = static_cast<int64_t>(seeds.size());
    std::vector<torch::Tensor> z = {noise.normal(torch::empty({b, 3, 8, 8})), noise.normal(torch::empty({b, 3, 16, 16}))};
    return run_sampler(exact_denoiser(sch), sch, z, o, noise);
  };
  auto together = run({7, 8});
  auto alone = run({8});
  EXPECT_TRUE(torch::equal(together[1][1], alone[1][0]));
  EXPECT_TRUE(torch::equal(together[0][1], alone[0][0]));
}

TEST(Sampler, CallbackSeesEveryStepAndCanCancel) {
  const auto sch = schedules();
  SamplerOptions o;
  o.steps = 5;
  std::vector<int64_t> ts;
  o.callback = [&](const StepInfo& info) {
    ts.push_back(info.t);
    EXPECT_EQ(info.x0->size(), 2u);
    return info.step < 3;
  };
  NoiseSource noise({1});
  std::vector<torch::Tensor> z = {torch::randn({1, 3, 8, 8}), torch::randn({1, 3, 16, 16})};
  EXPECT_THROW(run_sampler(exact_denoiser(sch), sch, z, o, noise), Cancelled);
  EXPECT_EQ(ts, (std::vector<int64_t>{834, 667, 500}));  // reference spacing (ancestral): 500.5 rounds to even
  o.sampler = "euler";
  EXPECT_THROW(run_sampler(exact_denoiser(sch), sch, z, o, noise), ConfigError);
}

}  // namespace
}  // namespace mdm
