// DiMR's diffusion pieces: the scaled-linear schedule, the sum-pool / ratio pyramid with shared noise, the
// per-level loss weights, and U-ViT's guidance form — against hand-worked or independently computed values.
#include <mdm/diffusion/guidance.h>
#include <mdm/diffusion/multires_diffusion.h>

#include <ATen/CPUGeneratorImpl.h>

#include "test_util.h"

namespace mdm {
namespace {

Config two_branch_dimr(const std::string& weights = "[0.25, 1.0]") {
  return parse_config(R"(
name: dimr_diffusion
model:
  arch: dimr
  conditioning: none
  dimr:
    branches:
      - {block: transformer, resolution: 8, patch_size: 2, dim: 8, hidden_dim: 16, num_heads: 2, num_blocks: 1}
      - {block: convnext, resolution: 16, dim: 8, hidden_dim: 16, kernel_size: 3, num_blocks: 1}
diffusion:
  prediction: eps
  loss_target: eps
  loss_weights: )" + weights + R"(
  downsample: sum
  shared_noise: true
)",
                      "dimr_diffusion.yaml");
}

TEST(ScaledLinearSchedule, MatchesStableDiffusionsBetas) {
  // β = linspace(√0.00085, √0.012, 1000)², γ_k = Π_{i ≤ k}(1 − β_i) (computed independently in Python).
  NoiseSchedule s("scaled-linear", 1000);
  EXPECT_NEAR(s.gamma(1), 0.99915, 1e-12);
  EXPECT_NEAR(s.gamma(500), 0.27766965045646763, 1e-12);
  EXPECT_NEAR(s.gamma(1000), 0.004660098513077234, 1e-12);
  // Its continuous limit follows the table to a few percent (the sum of β vs the product of 1 − β).
  for (double t : {0.25, 0.5, 1.0}) EXPECT_NEAR(NoiseSchedule("scaled-linear", 0).gamma_at(t) / s.gamma_at(t), 1.0, 0.03);
  const Config c = two_branch_dimr();
  MultiResDiffusion d(c.model, c.diffusion);
  ASSERT_EQ(d.schedules().size(), 2u);
  for (const auto& level : d.schedules()) EXPECT_EQ(level.name(), "scaled-linear");  // one image, one schedule
}

TEST(SumPool, IsTheBoxSumOverTheRatio) {
  auto x = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({1, 1, 2, 2});
  EXPECT_FLOAT_EQ(sum_pool(x, 2).item<float>(), 5.0f);  // (1 + 2 + 3 + 4) / 2
  EXPECT_TRUE(torch::allclose(sum_pool(torch::ones({1, 2, 8, 8}), 4), torch::full({1, 2, 2, 2}, 4.0f)));  // 16 / 4
  // Unit-variance white noise stays unit-variance (the reason for / ratio rather than / ratio²).
  auto gen = at::detail::createCPUGenerator(3);
  auto n = torch::randn({4, 1, 128, 128}, gen);
  EXPECT_NEAR(sum_pool(n, 2).std().item<double>(), 1.0, 0.02);
  EXPECT_NEAR(sum_pool(n, 4).std().item<double>(), 1.0, 0.03);
}

TEST(MultiResDiffusion, SharedNoiseMakesEveryLevelThePyramidOfTheHighest) {
  const Config c = two_branch_dimr();
  MultiResDiffusion d(c.model, c.diffusion);
  auto gen = at::detail::createCPUGenerator(5);
  auto x = torch::rand({2, 3, 16, 16}, gen) * 2 - 1;
  auto x0 = d.pyramid(x);
  EXPECT_TRUE(torch::allclose(x0[0], sum_pool(x, 2)));
  auto t = torch::tensor({10, 700}, torch::kLong);
  auto b = d.add_noise(x0, t, gen);
  EXPECT_TRUE(torch::allclose(b.eps[0], sum_pool(b.eps[1], 2), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(b.z[0], sum_pool(b.z[1], 2), 1e-5, 1e-5));  // z of the low level = pyramid of z
  // Given noise (per-sample draws) is replaced below the highest level.
  std::vector<torch::Tensor> eps = {torch::randn({2, 3, 8, 8}, gen), torch::randn({2, 3, 16, 16}, gen)};
  auto g = d.add_noise(x0, t, eps);
  EXPECT_TRUE(torch::equal(g.eps[1], eps[1]));
  EXPECT_TRUE(torch::allclose(g.eps[0], sum_pool(eps[1], 2)));
}

TEST(MultiResDiffusion, LossWeightsPerLevelByHand) {
  const Config c = two_branch_dimr();
  MultiResDiffusion d(c.model, c.diffusion);
  auto gen = at::detail::createCPUGenerator(1);
  auto b = d.add_noise(d.pyramid(torch::zeros({2, 3, 16, 16})), torch::tensor({100, 100}, torch::kLong), gen);
  // ε-prediction off by 1 at 8² and by 2 at 16²: ℓ = [1, 4], L = 1/4·1 + 1·4 = 4.25.
  auto out = d.loss({b.eps[0] + 1.0, b.eps[1] + 2.0}, b);
  EXPECT_NEAR(out.loss.item<double>(), 4.25, 1e-5);
  ASSERT_EQ(out.levels.size(), 2u);
  EXPECT_NEAR(out.levels[0].item<double>(), 1.0, 1e-5);
  EXPECT_NEAR(out.levels[1].item<double>(), 4.0, 1e-5);
  const Config equal = two_branch_dimr("auto");
  EXPECT_NEAR(MultiResDiffusion(equal.model, equal.diffusion).loss({b.eps[0] + 1.0, b.eps[1] + 2.0}, b).loss.item<double>(),
              5.0, 1e-5);
}

TEST(Guidance, UViTFormIsConditionalPlusScaleTimesTheDifference) {
  // ε_u = 1, ε_c = 3, s = 0.4: U-ViT's ε_c + s·(ε_c − ε_u) = 3.8 = cfg with weight 1 + s.
  auto out = torch::cat({torch::full({1, 2}, 1.0f), torch::full({1, 2}, 3.0f)});
  EXPECT_DOUBLE_EQ(guidance_weight("uvit", 0.4), 1.4);
  EXPECT_DOUBLE_EQ(guidance_weight("cfg", 0.4), 0.4);
  auto guided = combine_guidance({out}, guidance_weight("uvit", 0.4));
  EXPECT_TRUE(torch::allclose(guided[0], torch::full({1, 2}, 3.8f)));
  // s = 0 is the conditional prediction exactly (no guidance).
  EXPECT_TRUE(torch::equal(combine_guidance({out}, guidance_weight("uvit", 0.0))[0], torch::full({1, 2}, 3.0f)));
  EXPECT_THROW(guidance_weight("dimr", 1.0), ConfigError);
}

}  // namespace
}  // namespace mdm
