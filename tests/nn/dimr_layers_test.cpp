// DiMR's building blocks (nn/td_norm.h, gated_mlp.h, transformer_block.h, convnext_block.h, patchify.h,
// pixel_shuffle.h, position_embedding.h, uvit_skips.h) against hand-worked values and their designed behaviour.
#include <mdm/nn/convnext_block.h>
#include <mdm/nn/gated_mlp.h>
#include <mdm/nn/patchify.h>
#include <mdm/nn/pixel_shuffle.h>
#include <mdm/nn/position_embedding.h>
#include <mdm/nn/td_norm.h>
#include <mdm/nn/transformer_block.h>
#include <mdm/nn/uvit_skips.h>

#include "test_util.h"

namespace mdm {
namespace {

void set_gate(nn::TimeDependentParameter& p, std::vector<float> p0, std::vector<float> p1, float w, float b) {
  torch::NoGradGuard no_grad;
  p->param0.copy_(torch::tensor(p0));
  p->param1.copy_(torch::tensor(p1));
  p->nodecay_weight.fill_(w - 1.0f);  // the reference stores w − 1
  p->nodecay_bias.fill_(b);
}

void expect_values(const torch::Tensor& got, std::vector<double> want, double tol) {
  auto flat = got.reshape({-1});
  ASSERT_EQ(flat.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(flat[i].item<double>(), want[i], tol) << "entry " << i;
}

TEST(TDLayerNorm, EqualsTheFormulaByHand) {
  // x = [1, 2, 3, 4]: mean 2.5, variance 1.25. t = 1, w = 1, b = 0: g = sigmoid(1) = 0.7310586.
  // scale: p0 = 2, p1 = 0 → 2g = 1.4621172; shift: p0 = 1, p1 = −1 → 2g − 1 = 0.4621172.
  nn::TDLayerNorm norm(4);
  set_gate(norm->weight, {2, 2, 2, 2}, {0, 0, 0, 0}, 1, 0);
  set_gate(norm->bias, {1, 1, 1, 1}, {-1, -1, -1, -1}, 1, 0);
  auto y = norm(torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({1, 1, 4}), torch::tensor({1.0f}));
  // ((x − 2.5)/√(1.25 + 1e-5))·1.4621172 + 0.4621172
  expect_values(y, {-1.499511, -0.1917589, 1.1159932, 2.4237453}, 1e-5);
}

TEST(TDLayerNorm, GateLimitsGiveEitherParameterSet) {
  nn::TDLayerNorm norm(2);
  auto x = torch::tensor({0.0f, 2.0f, 0.0f, 2.0f}).view({2, 1, 2});  // normalised: [−1, 1] (to 1e-5)
  const auto t = torch::tensor({1.0f, -1.0f});
  // w = 100: sample 0 (t = +1) has g → 1 (p0), sample 1 (t = −1) g → 0 (p1).
  set_gate(norm->weight, {3, 5}, {7, 11}, 100, 0);
  set_gate(norm->bias, {1, 2}, {-1, -2}, 100, 0);
  expect_values(norm(x, t), {-3 + 1, 5 + 2, -7 - 1, 11 - 2}, 1e-3);
  // b → ±large gives p0 / p1 whatever t.
  set_gate(norm->weight, {3, 5}, {7, 11}, 1, 60);
  set_gate(norm->bias, {1, 2}, {-1, -2}, 1, 60);
  expect_values(norm(x, t), {-3 + 1, 5 + 2, -3 + 1, 5 + 2}, 1e-3);
  set_gate(norm->weight, {3, 5}, {7, 11}, 1, -60);
  set_gate(norm->bias, {1, 2}, {-1, -2}, 1, -60);
  expect_values(norm(x, t), {-7 - 1, 11 - 2, -7 - 1, 11 - 2}, 1e-3);
}

TEST(TDRMSNorm, EqualsTheFormulaByHand) {
  // x = [3, 4]: ‖x‖ = 5, rms = 5/√2, x/rms = [0.8485281, 1.1313708]. t = 0: g = 0.5, scale = (p0 + p1)/2 = [2, 3].
  nn::TDRMSNorm norm(2);
  set_gate(norm->scale, {1, 2}, {3, 4}, 1, 0);
  auto y = norm(torch::tensor({3.0f, 4.0f}).view({1, 1, 2}), torch::tensor({0.0f}));
  expect_values(y, {1.6970563, 3.3941125}, 1e-6);
  // The gate's limits: b = +60 → p0 = [1, 2]; b = −60 → p1 = [3, 4].
  set_gate(norm->scale, {1, 2}, {3, 4}, 1, 60);
  expect_values(norm(torch::tensor({3.0f, 4.0f}).view({1, 1, 2}), torch::tensor({0.0f})), {0.8485281, 2.2627417}, 1e-6);
  set_gate(norm->scale, {1, 2}, {3, 4}, 1, -60);
  expect_values(norm(torch::tensor({3.0f, 4.0f}).view({1, 1, 2}), torch::tensor({0.0f})), {2.5455844, 4.5254834}, 1e-6);
}

TEST(TDRMSNorm, FreshNormIsPlainRMSNormAtEveryTime) {
  nn::TDRMSNorm norm(8);  // p0 = p1 = 1: the gate has nothing to interpolate
  auto x = torch::randn({3, 5, 8});
  auto want = x / (x.square().mean(-1, true).sqrt() + 1e-8);
  EXPECT_TRUE(torch::allclose(norm(x, torch::tensor({-1.0f, 0.3f, 1.0f})), want, 1e-5, 1e-6));
}

TEST(GatedMLP, IsW2OfGeluW0TimesW1) {
  torch::manual_seed(0);
  nn::GatedMLP mlp(4, 6);
  auto x = torch::randn({2, 3, 4});
  auto n = x / (x.norm(2, -1, true) / 2.0 + 1e-8);
  auto want = mlp->w2(torch::gelu(mlp->w0(n)) * mlp->w1(n));
  EXPECT_TRUE(torch::allclose(mlp(x, torch::zeros({2})), want, 1e-5, 1e-6));
}

TEST(TransformerBlock, ShapesAndResidualDesign) {
  torch::manual_seed(0);
  nn::TransformerBlock block(nn::TransformerBlockOptions(16, 32).num_heads(4).cond_dim(8));
  auto x = torch::randn({2, 10, 16});
  auto text = torch::randn({2, 3, 8});
  auto mask = torch::tensor({1.0f, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f}).view({2, 3});
  auto y = block(x, torch::zeros({2}), text, mask);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_GT((y - x).abs().max().item<float>(), 1e-3);
  // Residual branches: with the attention's and the MLP's output layers zeroed the block is the identity.
  {
    torch::NoGradGuard no_grad;
    block->block1->dense->weight.zero_();
    block->block1->dense->bias.zero_();
    block->block2->w2->weight.zero_();
    block->block2->w2->bias.zero_();
  }
  EXPECT_TRUE(torch::equal(block(x, torch::zeros({2}), text, mask), x));
  // Parameter names are the reference's (TransformerBlock → SelfAttention / MLPBlock).
  auto params = block->named_parameters();
  for (const char* key : {"block1.norm.scale.param0", "block1.norm.scale.nodecay_bias", "block1.query_key_value.weight",
                          "block1.condition_key_value.weight", "block1.dense.bias", "block2.norm.scale.param1",
                          "block2.w0.weight", "block2.w1.bias", "block2.w2.weight"}) {
    EXPECT_TRUE(params.contains(key)) << key;
  }
  EXPECT_FALSE(params.contains("block1.query_key_value.bias"));
}

TEST(TransformerBlock, PaddedTextTokensAreIgnored) {
  torch::manual_seed(1);
  nn::TransformerBlock block(nn::TransformerBlockOptions(8, 16).num_heads(2).cond_dim(4));
  auto x = torch::randn({1, 5, 8});
  auto text = torch::randn({1, 3, 4});
  auto mask = torch::tensor({1.0f, 1.0f, 0.0f}).view({1, 3});
  auto changed = text.clone();
  changed[0][2] += 10.0;  // a padding token
  auto a = block(x, torch::zeros({1}), text, mask), b = block(x, torch::zeros({1}), changed, mask);
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6));
}

TEST(ConvNeXtBlock, ShapesAndResidualDesign) {
  torch::manual_seed(0);
  nn::ConvNeXtBlock block(nn::ConvNeXtBlockOptions(8, 16).kernel_size(7));
  auto x = torch::randn({2, 9, 9, 8});  // channel-last
  auto y = block(x, torch::tensor({0.5f, -0.5f}));
  EXPECT_EQ(y.sizes(), x.sizes());
  auto conv = block->block1->ptr<torch::nn::Conv2dImpl>(1);
  EXPECT_EQ(conv->weight.sizes(), (std::vector<int64_t>{8, 1, 7, 7}));  // depthwise
  {
    torch::NoGradGuard no_grad;
    block->block2->w2->weight.zero_();
    block->block2->w2->bias.zero_();
  }
  // With the MLP's output zeroed: x + depthwise(x), the convolution alone.
  auto want = x + nn::to_channels_last(conv->forward(nn::to_channels_first(x)));
  EXPECT_TRUE(torch::allclose(block(x, torch::zeros({2})), want, 1e-5, 1e-6));
  {
    torch::NoGradGuard no_grad;
    conv->weight.zero_();
    conv->bias.zero_();
  }
  EXPECT_TRUE(torch::equal(block(x, torch::zeros({2})), x));
  EXPECT_TRUE(block->named_parameters().contains("block1.1.weight"));
}

TEST(Patchify, UnpatchifyInvertsIt) {
  auto x = torch::randn({2, 8, 12, 3});
  for (int64_t p : {1, 2, 4}) {
    auto y = nn::patchify(x, p);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 8 / p, 12 / p, 3 * p * p}));
    EXPECT_TRUE(torch::equal(nn::unpatchify(y, p), x)) << p;
  }
  // Channel order (i·p + j)·C + c: patch (0, 0) of a 2×2 image with C = 1 lists its pixels row by row.
  auto img = torch::arange(4, torch::kFloat).view({1, 2, 2, 1});
  expect_values(nn::patchify(img, 2), {0, 1, 2, 3}, 0);
}

TEST(PixelShuffleUpsample, IsTheKernelThenTheReferenceShuffle) {
  torch::manual_seed(0);
  nn::PixelShuffleUpsample up(6, 3, 2);
  auto x = torch::randn({2, 4, 5, 6});
  auto y = up(x);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 8, 10, 3}));
  // The reference: reshape(B, H, W, r, r, C).transpose(2, 3).reshape(B, H·r, W·r, C).
  auto k = up->kernel(x);
  auto want = k.reshape({2, 4, 5, 2, 2, 3}).transpose(2, 3).reshape({2, 8, 10, 3});
  EXPECT_TRUE(torch::equal(y, want));
}

TEST(PositionEmbedding, AddsRowHTimesMaxWidthPlusW) {
  nn::PositionEmbedding pe(4, 4, 2);
  auto x = torch::zeros({1, 3, 2, 2});
  auto y = pe(x);
  const auto& w = pe->position_embeddings->weight;
  EXPECT_TRUE(torch::equal(y[0][2][1], w[2 * 4 + 1]));
  EXPECT_TRUE(torch::equal(y[0][1][0], w[4]));
}

TEST(UViTSkips, OutBlocksMergeTheMatchingInBlockOutput) {
  // Blocks add i + 1; skip layers average the concatenation (weights 0.5, 0.5): tracked by hand for 5 blocks.
  EXPECT_EQ(nn::uvit_depth(39), 39);
  EXPECT_EQ(nn::uvit_depth(20), 21);
  auto denses = nn::uvit_skip_denses(1, 5);
  ASSERT_EQ(denses->size(), 2u);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : denses->parameters()) p.fill_(0.5);
    for (const auto& m : *denses) m->as<torch::nn::LinearImpl>()->bias.zero_();
  }
  auto block = [](size_t i, const torch::Tensor& x) { return x + static_cast<double>(i + 1); };
  std::vector<torch::Tensor> outputs;
  auto y = nn::run_uvit_blocks(block, 5, denses, torch::zeros({1, 1}), &outputs);
  // in: 0 → 1 → 3 (skips 1, 3); mid: 6; out 3: (6 + 3)/2 + 4 = 8.5; out 4: (8.5 + 1)/2 + 5 = 9.75.
  EXPECT_DOUBLE_EQ(y.item<double>(), 9.75);
  ASSERT_EQ(outputs.size(), 6u);  // the input and the 5 block outputs
  expect_values(torch::cat(outputs), {0, 1, 3, 6, 8.5, 9.75}, 1e-6);
}

}  // namespace
}  // namespace mdm
