// The fused path (nn/folded_group_norm.h, nn/pointwise.h) computes what the unfused ops compute:
// GroupNorm from per-channel moments with a folded convolution bias, the ResNet and whole models, with
// autograd off and with it on (every gradient), in float32 to round-off and in bf16 within bf16's own
// error. The CUDA kernels are checked against these ops in models/cuda_test.cpp.
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

// Set the process-wide fusion settings for a scope.
struct InferenceFusion {
  explicit InferenceFusion(nn::Fusion f) : was(nn::inference_fusion()) { nn::set_inference_fusion(f); }
  ~InferenceFusion() { nn::set_inference_fusion(was); }
  nn::Fusion was;
};
struct TrainingFusion {
  explicit TrainingFusion(nn::Fusion f) : was(nn::training_fusion()) { nn::set_training_fusion(f); }
  ~TrainingFusion() { nn::set_training_fusion(was); }
  nn::Fusion was;
};

// The tiny nested model with random weights, and random inputs for it.
struct TinyModel {
  std::shared_ptr<Denoiser> model;
  test::ModelInputs in;
};
TinyModel random_tiny_model(uint64_t seed) {
  const Config c = load_config(test::config_file("tiny_s16s32.yaml"));
  TinyModel t{build_model(c.model), {}};
  test::randomize(*t.model, seed);
  torch::manual_seed(seed + 1);
  t.in = test::random_model_inputs(*t.model, c.model.text_feature_dim, 2);
  return t;
}

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

TEST(FoldedGroupNorm, ConstantGroupsNormaliseToExactlyBeta) {
  auto norm = test::random_group_norm(2, 8, 3);
  auto h = torch::ones({1, 8, 4, 4}) * 3;  // zero variance in group 0: only eps keeps rstd finite
  h.slice(1, 4, 8) = torch::randn({1, 4, 4, 4});
  torch::NoGradGuard no_grad;
  auto got = nn::folded_group_norm_silu(h, norm);
  EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
  // h − centre is 0 there, so the output is silu(β) exactly. ATen's own CPU GroupNorm folds the mean into
  // its shift (x·rstd·γ + (β − mean·rstd·γ)) and is ~1e-5 off here, where rstd = 1/sqrt(eps) ≈ 316.
  const auto beta = torch::silu(norm->bias.slice(0, 0, 4)).view({1, 4, 1, 1}).expand({1, 4, 4, 4});
  EXPECT_LT(max_diff(got.slice(1, 0, 4), beta), 1e-7);
  EXPECT_LT(max_diff(got.slice(1, 4, 8), unfused(h, norm, {}, {}, {}).slice(1, 4, 8)), 1e-6);
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

TEST(Pointwise, OnTheCpuTheyAreAtensOps) {
  torch::manual_seed(6);
  auto x = torch::randn({2, 6, 3, 3}), r = torch::randn({2, 6, 3, 3}), bias = torch::randn({6});
  EXPECT_EQ(nn::pointwise_backend(x), "aten");
  EXPECT_TRUE(torch::allclose(nn::add_bias_residual(x, bias, r), x + bias.view({1, 6, 1, 1}) + r));
  auto c = torch::randn({2, 6, 1, 1}), a = torch::randn({2, 6, 1, 1}), b = torch::randn({2, 6, 1, 1});
  EXPECT_TRUE(torch::allclose(nn::scale_shift_silu(x, c, a, b), torch::silu((x - c) * a + b), 1e-6, 1e-6));
  auto dy = torch::randn({2, 6, 3, 3});
  const auto z = ((x - c) * a + b).requires_grad_();
  const auto dz = torch::autograd::grad({torch::silu(z)}, {z}, {dy})[0];
  EXPECT_TRUE(torch::allclose(nn::scale_shift_silu_backward(dy, x, c, a, b), dz, 1e-6, 1e-6));
  auto alpha = torch::randn({2, 6, 1, 1}), beta = torch::randn({2, 6, 1, 1}), gamma = torch::randn({2, 6, 1, 1});
  EXPECT_TRUE(torch::allclose(nn::affine_combination(dy, x, c, alpha, beta, gamma), dy * alpha + (x - c) * beta + gamma,
                              1e-6, 1e-6));
  EXPECT_THROW(nn::add_bias_residual(x, torch::randn({5}), r), c10::Error);
}

TEST(FoldedGroupNorm, ResNetWithoutAutogradEqualsResNetWithIt) {
  for (int64_t cin : {16, 24}) {  // identity shortcut, and conv3 (whose bias joins conv2's)
    nn::ResNet r(nn::ResNetOptions(cin, 16, 8).num_groups(4));
    test::randomize(*r, 7);
    torch::manual_seed(8);
    auto x = torch::randn({2, cin, 8, 8}) + 1, temb = torch::randn({2, 8});
    auto with_grad = r(x, temb).detach();
    EXPECT_FALSE(nn::fusion_plan(x).active);  // autograd on
    torch::NoGradGuard no_grad;
    {
      // Every branch the GPU takes (biases folded, the one-kernel ops in their ATen form).
      InferenceFusion always(nn::Fusion::Always);
      const auto plan = nn::fusion_plan(x);
      EXPECT_TRUE(plan.active && plan.fold_bias && plan.fused_kernels);
      auto fused = r(x, temb);
      EXPECT_LT(max_diff(fused, with_grad), 1e-5) << cin << " input channels";
      EXPECT_FALSE(torch::equal(fused, with_grad)) << "the fused path did not run";
    }
    // Auto fuses large CUDA activations only: nothing changes on the CPU.
    const auto big = torch::empty({1, nn::kFusionMinElements}).view({1, -1, 1, 1});
    EXPECT_FALSE(nn::fusion_plan(big).active);
    EXPECT_TRUE(torch::equal(r(x, temb), with_grad));
  }
}

TEST(FoldedGroupNorm, WholeNestedModelGivesTheSameOutputsFusedOrNot) {
  const TinyModel tiny = random_tiny_model(9);
  const auto& model = tiny.model;
  const auto& in = tiny.in;
  torch::NoGradGuard no_grad;
  const auto plain = model->forward(in.z, in.t, in.cond);
  InferenceFusion always(nn::Fusion::Always);
  const auto fused = model->forward(in.z, in.t, in.cond);
  ASSERT_EQ(fused.size(), plain.size());
  for (size_t l = 0; l < fused.size(); ++l) {
    const double scale = plain[l].abs().max().item<double>();
    EXPECT_LT(max_diff(fused[l], plain[l]), 1e-4 * scale) << "level " << l;
    EXPECT_FALSE(torch::equal(fused[l], plain[l])) << "the fused path did not run at level " << l;
  }
}

// Channels-last weights and inputs (mdm-bench --channels-last): the fused path gives what it gives in the
// default layout, and the layout carries through to the outputs (no op copied back to NCHW).
TEST(FoldedGroupNorm, ChannelsLastModelGivesTheSameOutputs) {
  const TinyModel tiny = random_tiny_model(9), cl = random_tiny_model(9);
  test::to_channels_last(*cl.model);
  std::vector<torch::Tensor> z_cl;
  for (const auto& z : cl.in.z) z_cl.push_back(z.contiguous(torch::MemoryFormat::ChannelsLast));
  torch::NoGradGuard no_grad;
  InferenceFusion always(nn::Fusion::Always);
  const auto plain = tiny.model->forward(tiny.in.z, tiny.in.t, tiny.in.cond);
  const auto channels = cl.model->forward(z_cl, cl.in.t, cl.in.cond);
  ASSERT_EQ(channels.size(), plain.size());
  for (size_t l = 0; l < plain.size(); ++l) {
    EXPECT_TRUE(nn::channels_last(channels[l])) << "level " << l << ": " << channels[l].strides();
    EXPECT_LT(max_diff(channels[l], plain[l]), 1e-4 * plain[l].abs().max().item<double>()) << "level " << l;
  }
}

TEST(FoldedGroupNorm, ChannelsLastMeansAFourDimensionalChannelsLastLayout) {
  const auto x = torch::randn({2, 8, 4, 4}) * 3 + 1;
  const auto x_cl = x.contiguous(torch::MemoryFormat::ChannelsLast);
  EXPECT_FALSE(nn::channels_last(x));
  EXPECT_TRUE(nn::channels_last(x_cl));
  // A 1×1 image is contiguous in both layouts: the default path takes it.
  EXPECT_FALSE(nn::channels_last(torch::randn({2, 8, 1, 1}).contiguous(torch::MemoryFormat::ChannelsLast)));
  EXPECT_FALSE(nn::channels_last(torch::randn({2, 8, 16})));
  const auto [mean, var] = nn::channel_moments(x);
  const auto [mean_cl, var_cl] = nn::channel_moments(x_cl);
  EXPECT_TRUE(torch::allclose(mean_cl, mean, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(var_cl, var, 1e-6, 1e-6));
}

// --- Training: the autograd path. -------------------------------------------------------------------------

// Every gradient of the fused function against autograd through the unfused ops.
struct Leaves {
  torch::Tensor h, bias, scale, shift;
};
Leaves leaves(torch::ScalarType dtype, int64_t seed) {
  torch::manual_seed(seed);
  const auto o = torch::TensorOptions().dtype(dtype);
  Leaves l;
  // Channel means far from zero and apart: the gradient's folded terms cancel in h·β + γ.
  l.h = (torch::randn({2, 16, 5, 7}, o) * (0.5 + torch::rand({1, 16, 1, 1}, o)) + 3 * torch::randn({1, 16, 1, 1}, o))
            .requires_grad_();
  l.bias = torch::randn({16}, o).requires_grad_();
  l.scale = (1 + 0.5 * torch::randn({2, 16, 1, 1}, o)).requires_grad_();
  l.shift = torch::randn({2, 16, 1, 1}, o).requires_grad_();
  return l;
}

// The gradients of Σ y·w (w fixed, random) with respect to h, bias, scale, shift, the norm's weight and bias.
std::vector<torch::Tensor> gradients(const torch::Tensor& y, const Leaves& l, const torch::nn::GroupNorm& norm,
                                     bool with_bias, bool with_scale_shift) {
  torch::manual_seed(99);
  const auto w = torch::randn(y.sizes(), torch::kDouble).to(y.scalar_type());  // the same w in every dtype
  std::vector<torch::Tensor> inputs{l.h};
  if (with_bias) inputs.push_back(l.bias);
  if (with_scale_shift) {
    inputs.push_back(l.scale);
    inputs.push_back(l.shift);
  }
  if (norm->options.affine()) {
    inputs.push_back(norm->weight);
    inputs.push_back(norm->bias);
  }
  return torch::autograd::grad({(y * w).sum()}, inputs);
}

TEST(FoldedGroupNormTraining, EveryGradientEqualsTheUnfusedOpsGradientInFloat64) {
  const Leaves l = leaves(torch::kDouble, 20);
  for (bool affine : {true, false}) {
    torch::nn::GroupNorm norm = affine ? test::random_group_norm(4, 16, 21)
                                       : torch::nn::GroupNorm(torch::nn::GroupNormOptions(4, 16).affine(false));
    norm->to(torch::kDouble);
    for (int variant = 0; variant < 4; ++variant) {
      const bool with_bias = variant & 1, with_ss = variant & 2;
      const torch::Tensor none;
      const auto& b = with_bias ? l.bias : none;
      const auto& s = with_ss ? l.scale : none;
      const auto& t = with_ss ? l.shift : none;
      const auto expected = gradients(unfused(l.h, norm, b, s, t), l, norm, with_bias, with_ss);
      const auto fused_y = nn::folded_group_norm_silu(l.h, norm, b, s, t);
      ASSERT_TRUE(fused_y.requires_grad());
      EXPECT_LT(max_diff(fused_y, unfused(l.h, norm, b, s, t)), 1e-12);
      const auto got = gradients(fused_y, l, norm, with_bias, with_ss);
      ASSERT_EQ(got.size(), expected.size());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_TRUE(got[i].defined()) << "gradient " << i;
        EXPECT_EQ(got[i].sizes(), expected[i].sizes()) << "gradient " << i;
        EXPECT_EQ(got[i].scalar_type(), torch::kDouble);
        const double scale_of = expected[i].abs().max().item<double>();
        EXPECT_LT(max_diff(got[i], expected[i]), 1e-10 * scale_of + 1e-12)
            << "gradient " << i << ", affine " << affine << ", bias " << with_bias << ", scale-shift " << with_ss;
      }
    }
  }
}

TEST(FoldedGroupNormTraining, Bf16GradientsAreAsCloseToFloat64AsTheUnfusedBf16Ones) {
  const Leaves l = leaves(torch::kDouble, 22);
  auto norm = test::random_group_norm(4, 16, 23);
  norm->to(torch::kDouble);
  const auto exact = gradients(unfused(l.h, norm, l.bias, l.scale, l.shift), l, norm, true, true);
  // bf16 activations and time features, float32 parameters: as under autocast.
  auto norm32 = test::random_group_norm(4, 16, 23);
  Leaves lb;
  lb.h = l.h.detach().to(torch::kBFloat16).requires_grad_();
  lb.bias = l.bias.detach().to(torch::kFloat).requires_grad_();
  lb.scale = l.scale.detach().to(torch::kBFloat16).requires_grad_();
  lb.shift = l.shift.detach().to(torch::kBFloat16).requires_grad_();
  auto bf = [](const torch::Tensor& t) { return t.to(torch::kBFloat16); };
  const auto unfused_bf16 = torch::silu(
      nn::group_norm_in(norm32, lb.h + bf(lb.bias).view({1, -1, 1, 1}), torch::kBFloat16) * lb.scale + lb.shift);
  const auto by_unfused = gradients(unfused_bf16, lb, norm32, true, true);
  const auto fused = nn::folded_group_norm_silu(lb.h, norm32, lb.bias, lb.scale, lb.shift);
  EXPECT_EQ(fused.scalar_type(), torch::kBFloat16);
  const auto by_fused = gradients(fused, lb, norm32, true, true);
  for (size_t i = 0; i < exact.size(); ++i) {
    EXPECT_EQ(by_fused[i].scalar_type(), by_unfused[i].scalar_type()) << "gradient " << i;
    const double err_unfused = max_diff(by_unfused[i], exact[i]), err_fused = max_diff(by_fused[i], exact[i]);
    const double scale_of = exact[i].abs().max().item<double>();
    // Measured: the fused ones are the closer, 0.09–0.55× the unfused ops' error (their arithmetic is
    // float32 throughout, on h − centre).
    EXPECT_LT(err_fused, err_unfused) << "gradient " << i << ": " << err_fused << " vs " << err_unfused;
    EXPECT_LT(err_fused, scale_of / 64) << "gradient " << i;
  }
}

TEST(PointwiseTraining, AddBiasResidualGradientsGoToEachInputInItsDtype) {
  torch::manual_seed(24);
  auto x = torch::randn({2, 6, 3, 3}).to(torch::kBFloat16).requires_grad_();
  auto r = torch::randn({2, 6, 3, 3}).requires_grad_();
  auto bias = torch::randn({6}).requires_grad_();
  auto y = nn::add_bias_residual(x, bias, r);
  EXPECT_EQ(y.scalar_type(), torch::kFloat);
  // The ATen form: the bias added as a bf16 convolution under autocast adds it, then the residual.
  EXPECT_TRUE(torch::equal(y, (x + bias.to(torch::kBFloat16).view({1, 6, 1, 1})) + r));
  const auto w = torch::randn(y.sizes());
  const auto g = torch::autograd::grad({(y * w).sum()}, {x, bias, r});
  EXPECT_EQ(g[0].scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(g[0], w.to(torch::kBFloat16)));
  EXPECT_TRUE(torch::allclose(g[1], w.sum({0, 2, 3}), 1e-6, 1e-5));
  EXPECT_TRUE(torch::equal(g[2], w));
  // Without autograd nothing is recorded.
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(nn::add_bias_residual(x, bias, r).requires_grad());
}

TEST(FoldedGroupNormTraining, ResNetGradientsEqualTheUnfusedOnes) {
  for (int64_t cin : {16, 24}) {  // identity shortcut, and conv3 (whose bias joins conv2's)
    nn::ResNet r(nn::ResNetOptions(cin, 16, 8).num_groups(4));
    test::randomize(*r, 25);
    torch::manual_seed(26);
    auto x = (torch::randn({2, cin, 8, 8}) + 1).requires_grad_(), temb = torch::randn({2, 8});
    const auto w = torch::randn({2, 16, 8, 8});
    auto run = [&](nn::Fusion fusion) {
      TrainingFusion scope(fusion);
      EXPECT_EQ(nn::fusion_plan(x).active, fusion == nn::Fusion::Always);
      r->zero_grad();
      auto y = r(x, temb);
      auto gx = torch::autograd::grad({(y * w).sum()}, {x}, {}, /*retain_graph=*/true)[0];
      (y * w).sum().backward();
      std::vector<torch::Tensor> out{y.detach(), gx};
      for (const auto& p : r->parameters()) out.push_back(p.grad().clone());
      return out;
    };
    const auto plain = run(nn::Fusion::Off);
    const auto fused = run(nn::Fusion::Always);
    EXPECT_FALSE(torch::equal(fused[0], plain[0])) << "the fused path did not run";
    const auto names = r->named_parameters().keys();
    for (size_t i = 0; i < plain.size(); ++i) {
      const std::string what = i == 0 ? "output" : i == 1 ? "dx" : "d" + names[i - 2];
      const double scale_of = plain[i].abs().max().item<double>();
      EXPECT_LT(max_diff(fused[i], plain[i]), 2e-5 * scale_of + 1e-6) << what << ", " << cin << " input channels";
    }
    // Auto keeps the CPU on the unfused ops while training too.
    TrainingFusion automatic(nn::Fusion::Auto);
    EXPECT_FALSE(nn::fusion_plan(torch::empty({1, nn::kFusionMinElements}).view({1, -1, 1, 1})).active);
  }
}

TEST(FoldedGroupNormTraining, WholeNestedModelLossGradientsAreTheSameFusedOrNot) {
  const TinyModel tiny = random_tiny_model(27);
  const auto& model = tiny.model;
  const auto& in = tiny.in;
  auto run = [&](nn::Fusion fusion) {
    TrainingFusion scope(fusion);
    model->zero_grad();
    const auto out = model->forward(in.z, in.t, in.cond);
    torch::Tensor loss = torch::zeros({});
    for (size_t l = 0; l < out.size(); ++l) loss = loss + (out[l] - in.z[l]).square().mean();
    loss.backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
    return std::make_pair(loss.item<double>(), grads);
  };
  const auto [plain_loss, plain] = run(nn::Fusion::Off);
  const auto [fused_loss, fused] = run(nn::Fusion::Always);
  EXPECT_NEAR(fused_loss, plain_loss, 1e-5 * plain_loss);
  // The whole gradient vector, and no parameter losing or gaining a gradient.
  double diff2 = 0, norm2 = 0;
  bool differs = false;  // somewhere, at round-off
  for (size_t i = 0; i < plain.size(); ++i) {
    ASSERT_EQ(fused[i].defined(), plain[i].defined()) << "parameter " << i;
    if (!plain[i].defined()) continue;
    differs = differs || !torch::equal(fused[i], plain[i]);
    diff2 += (fused[i] - plain[i]).square().sum().item<double>();
    norm2 += plain[i].square().sum().item<double>();
  }
  EXPECT_TRUE(differs) << "the fused path did not run";
  EXPECT_LT(std::sqrt(diff2), 1e-4 * std::sqrt(norm2)) << std::sqrt(diff2) << " of " << std::sqrt(norm2);
}

TEST(FoldedGroupNorm, FusionSettingsParseAndPrint) {
  for (const auto f : {nn::Fusion::Off, nn::Fusion::Auto, nn::Fusion::Always}) {
    EXPECT_EQ(nn::parse_fusion(nn::to_string(f)), f);
  }
  try {
    nn::parse_fusion("sometimes");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'sometimes'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mdm
