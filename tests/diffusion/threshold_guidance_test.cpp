// Thresholding against hand-computed tensors; classifier-free guidance's limits.
#include <mdm/diffusion/guidance.h>
#include <mdm/diffusion/threshold.h>

#include "test_util.h"

namespace mdm {
namespace {

TEST(Threshold, DynamicByHand) {
  // Sample 0: |x| sorted = 0.5, 1, 2, 3, 4; the 0.75 quantile (linear interpolation) is at position 3 → 3.
  // Sample 1: all |x| ≤ 0.8, so q is clamped up to 1 and the values are only clipped to [−1, 1].
  auto x0 = torch::tensor({{0.5, -3.0, 2.0, 1.0, 4.0}, {0.1, -0.8, 0.2, 0.3, 0.0}}, torch::kFloat);
  ThresholdOptions o{"dynamic", 0.75, 100.0};
  auto y = apply_threshold(x0, o);
  auto expected = torch::tensor({{0.5 / 3, -1.0, 2.0 / 3, 1.0 / 3, 1.0}, {0.1, -0.8, 0.2, 0.3, 0.0}}, torch::kFloat);
  EXPECT_TRUE(torch::allclose(y, expected, 1e-6, 1e-7)) << y;
  // max_value caps q: with max 1.5, sample 0 is clamped to ±1.5 and divided by 1.5.
  ThresholdOptions capped{"dynamic", 0.75, 1.5};
  auto z = apply_threshold(x0, capped);
  EXPECT_TRUE(torch::allclose(z[0], torch::tensor({0.5 / 1.5, -1.0, 1.0, 1.0 / 1.5, 1.0}, torch::kFloat), 1e-6, 1e-7)) << z;
}

TEST(Threshold, PresetsAndClip) {
  auto d = ThresholdOptions::preset("dynamic");
  EXPECT_DOUBLE_EQ(d.percentile, 0.995);
  EXPECT_DOUBLE_EQ(d.max_value, 100.0);
  auto f = ThresholdOptions::preset("dynamic-if");
  EXPECT_DOUBLE_EQ(f.percentile, 0.95);
  EXPECT_DOUBLE_EQ(f.max_value, 1.5);
  auto x = torch::tensor({{-2.0f, 0.5f, 3.0f}});
  EXPECT_TRUE(torch::equal(apply_threshold(x, ThresholdOptions::preset("clip")), torch::tensor({{-1.0f, 0.5f, 1.0f}})));
  EXPECT_TRUE(torch::equal(apply_threshold(x, ThresholdOptions::preset("none")), x));
  EXPECT_THROW(ThresholdOptions::preset("soft"), ConfigError);
}

TEST(Guidance, ScaleOneIsConditionalZeroIsUnconditional) {
  torch::manual_seed(0);
  auto u = torch::randn({2, 3, 4, 4}), c = torch::randn({2, 3, 4, 4});
  std::vector<torch::Tensor> both = {torch::cat({u, c}), torch::cat({u.slice(2, 0, 2), c.slice(2, 0, 2)})};
  EXPECT_TRUE(torch::equal(combine_guidance(both, 1.0)[0], c));
  EXPECT_TRUE(torch::equal(combine_guidance(both, 0.0)[0], u));
  EXPECT_TRUE(torch::allclose(combine_guidance(both, 7.5)[0], u + 7.5 * (c - u)));
  EXPECT_TRUE(torch::equal(combine_guidance(both, 1.0)[1], c.slice(2, 0, 2)));
  auto dup = duplicate_batch({u});
  EXPECT_EQ(dup[0].size(0), 4);
  EXPECT_TRUE(torch::equal(dup[0].slice(0, 2, 4), u));
}

}  // namespace
}  // namespace mdm
