// The fused inference path (nn/folded_group_norm.h, nn/pointwise.h) computes what the unfused ops compute:
// GroupNorm from per-channel moments with a folded convolution bias, the ResNet and whole models with
// autograd off, in float32 to round-off and in bf16 within bf16's own error. The CUDA kernels are checked
// against these ops in models/cuda_test.cpp.
#include <mdm/nn/folded_group_norm.h>
#include <mdm/nn/group_norm.h>
#include <mdm/nn/pointwise.h>
#include <mdm/nn/resnet.h>

#include "test_util.h"

namespace mdm {
namespace {

// What the fused function replaces, op by op.
torch::Tensor unfused(const torch::Tensor& h, const torch::nn::GroupNorm& norm, const torch::Tensor& bias,
                      const torch::Tensor& scale, const torch::Tensor& shift) {
  auto x = bias.defined() ? h + bias.view({1, -1, 1, 1}) : h;
  auto y = norm.ptr()->forward(x);
  if (scale.defined()) y = y * scale;
  if (shift.defined()) y = y + shift;
  return torch::silu(y);
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

// Sets the process-wide fusion setting for a scope.
struct Fusion {
  explicit Fusion(nn::InferenceFusion f) : was(nn::inference_fusion()) { nn::set_inference_fusion(f); }
  ~Fusion() { nn::set_inference_fusion(was); }
  nn::InferenceFusion was;
};

TEST(FoldedGroupNorm, ChannelMomentsAreMeanAndBiasedVariance) {
  torch::manual_seed(0);
  auto x = torch::randn({3, 5, 4, 6}) * 2 + 7;
  auto [mean, var] = nn::channel_moments(x);
  ASSERT_EQ(mean.sizes(), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(mean.scalar_type(), torch::kFloat);
  auto flat = x.reshape({3, 5, -1});
  EXPECT_TRUE(torch::allclose(mean, flat.mean(-1), 1e-6, 1e-5));
  EXPECT_TRUE(torch::allclose(var, (flat - flat.mean(-1, true)).square().mean(-1), 1e-5, 1e-5));
}

TEST(FoldedGroupNorm, EqualsNormThenScaleShiftThenSiluWithTheConvolutionBiasFolded) {
  auto norm = test::random_group_norm(4, 16, 1);
  torch::manual_seed(2);
  // Channel means far from zero and far from each other: the group statistics come from combined
  // channel statistics and must not lose the spread between channels.
  auto h = torch::randn({2, 16, 8, 8}) * (0.5 + torch::rand({1, 16, 1, 1})) + 5 * torch::randn({1, 16, 1, 1});
  auto bias = torch::randn({16});
  auto scale = 1 + 0.5 * torch::randn({2, 16, 1, 1});
  auto shift = torch::randn({2, 16, 1, 1});
  torch::NoGradGuard no_grad;
  const torch::Tensor none;
  for (int variant = 0; variant < 4; ++variant) {
    const auto& b = variant & 1 ? bias : none;
    const auto& s = variant & 2 ? scale : none;
    const auto& t = variant & 2 ? shift : none;
    auto expected = unfused(h, norm, b, s, t);
    auto got = nn::folded_group_norm_silu(h, norm, b, s, t);
    EXPECT_EQ(got.scalar_type(), torch::kFloat);
    EXPECT_LT(max_diff(got, expected), 2e-5) << "bias " << (variant & 1) << ", scale-shift " << (variant & 2);
  }
  // Without affine parameters too.
  torch::nn::GroupNorm plain(torch::nn::GroupNormOptions(4, 16).affine(false));
  EXPECT_LT(max_diff(nn::folded_group_norm_silu(h, plain, bias), unfused(h, plain, bias, none, none)), 2e-5);
}

TEST(FoldedGroupNorm, ConstantGroupsNormaliseToBetaAsGroupNormDoes) {
  auto norm = test::random_group_norm(2, 8, 3);
  auto h = torch::ones({1, 8, 4, 4}) * 3;  // zero variance everywhere: only eps keeps rstd finite
  h.slice(1, 4, 8) = torch::randn({1, 4, 4, 4});
  torch::NoGradGuard no_grad;
  auto got = nn::folded_group_norm_silu(h, norm);
  EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
  EXPECT_LT(max_diff(got, unfused(h, norm, {}, {}, {})), 1e-5);
}

TEST(FoldedGroupNorm, Bf16IsAsCloseToFloat32AsTheUnfusedBf16Ops) {
  auto norm = test::random_group_norm(8, 32, 4);
  torch::manual_seed(5);
  auto h = torch::randn({2, 32, 8, 8}) * 2 + torch::randn({1, 32, 1, 1});
  auto bias = torch::randn({32}), scale = 1 + 0.5 * torch::randn({2, 32, 1, 1}), shift = torch::randn({2, 32, 1, 1});
  torch::NoGradGuard no_grad;
  auto exact = unfused(h, norm, bias, scale, shift);
  // bf16 activations, float32 parameters: the unfused ops in bf16 against the fused ones.
  auto hb = h.to(torch::kBFloat16);
  auto unfused_bf16 =
      torch::silu(nn::group_norm_in(norm, hb + bias.to(torch::kBFloat16).view({1, -1, 1, 1}), torch::kBFloat16) *
                      scale.to(torch::kBFloat16) +
                  shift.to(torch::kBFloat16));
  auto fused_bf16 = nn::folded_group_norm_silu(hb, norm, bias, scale.to(torch::kBFloat16), shift.to(torch::kBFloat16));
  EXPECT_EQ(fused_bf16.scalar_type(), torch::kBFloat16);
  const double err_unfused = max_diff(unfused_bf16, exact), err_fused = max_diff(fused_bf16, exact);
  const double scale_of = exact.abs().max().item<double>();
  EXPECT_LT(err_fused, 2 * err_unfused + scale_of / 256) << err_fused << " vs " << err_unfused;
  EXPECT_LT(err_fused, scale_of / 32);
}

TEST(Pointwise, AddBiasResidualAndScaleShiftSiluOnTheCpuAreAtensOps) {
  torch::manual_seed(6);
  auto x = torch::randn({2, 6, 3, 3}), r = torch::randn({2, 6, 3, 3}), bias = torch::randn({6});
  EXPECT_EQ(nn::pointwise_backend(x), "aten");
  EXPECT_TRUE(torch::allclose(nn::add_bias_residual(x, bias, r), x + bias.view({1, 6, 1, 1}) + r));
  auto a = torch::randn({2, 6, 1, 1}), b = torch::randn({2, 6, 1, 1});
  EXPECT_TRUE(torch::allclose(nn::scale_shift_silu(x, a, b), torch::silu(x * a + b), 1e-6, 1e-6));
  EXPECT_THROW(nn::add_bias_residual(x, torch::randn({5}), r), c10::Error);
}

TEST(FoldedGroupNorm, ResNetWithoutAutogradEqualsResNetWithIt) {
  for (int64_t cin : {16, 24}) {  // identity shortcut, and conv3 (whose bias joins conv2's)
    nn::ResNet r(nn::ResNetOptions(cin, 16, 8).num_groups(4));
    test::randomize(*r, 7);
    torch::manual_seed(8);
    auto x = torch::randn({2, cin, 8, 8}) + 1, temb = torch::randn({2, 8});
    auto with_grad = r(x, temb).detach();
    EXPECT_FALSE(nn::inference_fusion_plan(x).active);  // autograd on
    torch::NoGradGuard no_grad;
    {
      // Every branch the GPU takes (biases folded, the one-kernel ops in their ATen form).
      Fusion always(nn::InferenceFusion::Always);
      const auto plan = nn::inference_fusion_plan(x);
      EXPECT_TRUE(plan.active && plan.fold_bias && plan.fused_kernels);
      auto fused = r(x, temb);
      EXPECT_LT(max_diff(fused, with_grad), 1e-5) << cin << " input channels";
      EXPECT_FALSE(torch::equal(fused, with_grad)) << "the fused path did not run";
    }
    // Auto fuses large CUDA activations only: nothing changes on the CPU.
    const auto big = torch::empty({1, nn::kFusionMinElements}).view({1, -1, 1, 1});
    EXPECT_FALSE(nn::inference_fusion_plan(big).active);
    EXPECT_TRUE(torch::equal(r(x, temb), with_grad));
  }
}

TEST(FoldedGroupNorm, WholeNestedModelGivesTheSameOutputsFusedOrNot) {
  Config c = load_config(test::config_file("tiny_s16s32.yaml"));
  auto model = build_model(c.model);
  test::randomize(*model, 9);
  torch::manual_seed(10);
  const auto in = test::random_model_inputs(*model, c.model.text_feature_dim, 2);
  torch::NoGradGuard no_grad;
  const auto plain = model->forward(in.z, in.t, in.cond);
  Fusion always(nn::InferenceFusion::Always);
  const auto fused = model->forward(in.z, in.t, in.cond);
  ASSERT_EQ(fused.size(), plain.size());
  for (size_t l = 0; l < fused.size(); ++l) {
    const double scale = plain[l].abs().max().item<double>();
    EXPECT_LT(max_diff(fused[l], plain[l]), 1e-4 * scale) << "level " << l;
    EXPECT_FALSE(torch::equal(fused[l], plain[l])) << "the fused path did not run at level " << l;
  }
}

}  // namespace
}  // namespace mdm
