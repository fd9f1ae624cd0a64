// The multi-resolution process: the pyramid, noising at one shared t with independent noise, Eq. 3's loss.
#include <mdm/diffusion/multires_diffusion.h>

#include <ATen/CPUGeneratorImpl.h>

#include "test_util.h"

namespace mdm {
namespace {

Config tiny() { return load_config(test::config_file("tiny_s16s32.yaml")); }

TEST(MultiResDiffusion, SchedulesPerLevelLowestFirst) {
  const Config c = tiny();
  MultiResDiffusion d(c.model, c.diffusion);
  ASSERT_EQ(d.schedules().size(), 2u);
  EXPECT_EQ(d.schedules()[0].name(), "cosine");
  EXPECT_EQ(d.schedules()[1].name(), "cosine-shift2");
  EXPECT_EQ(d.resolutions(), (std::vector<int64_t>{16, 32}));
}

TEST(MultiResDiffusion, AveragePyramidIsTheBoxFilter) {
  const Config c = tiny();
  MultiResDiffusion d(c.model, c.diffusion);
  auto x = torch::arange(2 * 3 * 32 * 32, torch::kFloat).view({2, 3, 32, 32});
  auto p = d.pyramid(x);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_TRUE(torch::equal(p[1], x));
  // Pixel (0, 0) of the 16² level is the mean of the 2×2 block x[0:2, 0:2].
  const float expected = (x[1][2][4][6] + x[1][2][4][7] + x[1][2][5][6] + x[1][2][5][7]).item<float>() / 4;
  EXPECT_FLOAT_EQ(p[0][1][2][2][3].item<float>(), expected);
  Config b = c;
  b.diffusion.downsample = "bilinear";
  auto pb = MultiResDiffusion(b.model, b.diffusion).pyramid(torch::ones({1, 3, 32, 32}));
  EXPECT_TRUE(torch::allclose(pb[0], torch::ones({1, 3, 16, 16})));
  EXPECT_THROW(d.pyramid(torch::zeros({1, 3, 16, 16})), Error);
}

TEST(MultiResDiffusion, NoisingUsesEachLevelsGammaAtTheSharedT) {
  const Config c = tiny();
  MultiResDiffusion d(c.model, c.diffusion);
  auto x0 = d.pyramid(torch::rand({4, 3, 32, 32}) * 2 - 1);
  auto t = torch::tensor({1, 250, 500, 1000}, torch::kLong);
  auto gen = at::detail::createCPUGenerator(3);
  auto b = d.add_noise(x0, t, gen);
  for (size_t l = 0; l < 2; ++l) {
    for (int64_t i = 0; i < 4; ++i) {
      const double g = d.schedules()[l].gamma(t[i].item<int64_t>());
      EXPECT_NEAR(b.gamma[l][i].item<double>(), g, 1e-7 * std::max(g, 1e-3));
      auto expected = std::sqrt(g) * x0[l][i] + std::sqrt(1 - g) * b.eps[l][i];
      EXPECT_TRUE(torch::allclose(b.z[l][i], expected, 1e-5, 1e-6));
    }
  }
  // Independent noise per level: the low level's ε is not the pooled high-level ε.
  auto pooled = torch::avg_pool2d(b.eps[1], 2) * 2;
  EXPECT_LT(torch::abs((pooled * b.eps[0]).mean()).item<double>(), 0.05);
  EXPECT_NEAR(b.eps[0].std().item<double>(), 1.0, 0.05);
}

TEST(MultiResDiffusion, LossIsZeroForTheExactPredictionAndWeightedPerLevel) {
  Config c = tiny();
  c.diffusion.loss_weights = {2.0, 0.5};
  MultiResDiffusion d(c.model, c.diffusion);
  auto x0 = d.pyramid(torch::rand({3, 3, 32, 32}) * 2 - 1);
  auto gen = at::detail::createCPUGenerator(5);
  auto b = d.add_noise(x0, d.sample_t(3, gen), gen);
  // The exact v (the network's parameterisation) gives zero ε-loss.
  std::vector<torch::Tensor> exact;
  for (size_t l = 0; l < 2; ++l) exact.push_back(target(Prediction::V, b.x0[l], b.eps[l], b.gamma[l]));
  EXPECT_LT(d.loss(exact, b).loss.item<double>(), 1e-10);
  // Off at one level only: v̂ = v(x0, ε + δ) = v + √γ·δ, whose ε̂ = √(1−γ)·z + √γ·v̂ = ε + γ·δ,
  // so ℓ = mean over the batch of γ²·δ² there, and the total is weighted by 2.
  std::vector<torch::Tensor> off = exact;
  off[0] = target(Prediction::V, b.x0[0], b.eps[0] + 0.1, b.gamma[0]);
  auto out = d.loss(off, b);
  const double gamma_mean_sq = (b.gamma[0].square() * 0.01).mean().item<double>();
  EXPECT_NEAR(out.levels[0].item<double>(), gamma_mean_sq, 1e-6);
  EXPECT_NEAR(out.levels[1].item<double>(), 0.0, 1e-10);
  EXPECT_NEAR(out.loss.item<double>(), 2.0 * gamma_mean_sq, 1e-6);
  // A stage over the lowest level only ignores the others.
  EXPECT_EQ(d.loss(off, b, 1).levels.size(), 1u);
}

TEST(MultiResDiffusion, ConditionDropoutRate) {
  auto gen = at::detail::createCPUGenerator(11);
  auto m = condition_dropout_mask(20000, 0.1, gen);
  EXPECT_NEAR(m.to(torch::kFloat).mean().item<double>(), 0.1, 0.01);
}

}  // namespace
}  // namespace mdm
