// The building blocks against their formulas, on hand-worked or independently computed values.
#include <mdm/nn/attention.h>
#include <mdm/nn/resnet.h>
#include <mdm/nn/resnet_block.h>
#include <mdm/nn/timestep_embedding.h>
#include <mdm/util/compat.h>

#include <cmath>

#include "test_util.h"

namespace mdm {
namespace {

TEST(TimestepEmbedding, MatchesTheFormulaByHand) {
  // T = 32: half = 4 frequencies exp(-i·ln(10000)/4) = 1, 0.1, 0.01, 0.001.
  auto e = nn::timestep_sinusoid(torch::tensor({0.0f, 1.0f, 500.0f}), 32);
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{3, 8}));
  const double f[] = {1.0, 0.1, 0.01, 0.001};
  for (int row = 0; row < 3; ++row) {
    const double k = row == 0 ? 0.0 : row == 1 ? 1.0 : 500.0;
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(e[row][i].item<float>(), std::sin(k * f[i]), 2e-4) << row << "," << i;
      EXPECT_NEAR(e[row][4 + i].item<float>(), std::cos(k * f[i]), 2e-4) << row << "," << i;
    }
  }
}

TEST(ResNet, FreshBlockIsTheIdentityOrItsShortcut) {
  torch::manual_seed(0);
  nn::ResNet same(nn::ResNetOptions(32, 32, 16));
  auto x = torch::randn({2, 32, 8, 8});
  auto temb = torch::randn({2, 16});
  EXPECT_TRUE(torch::equal(same(x, temb), x));  // conv2 is zero-initialised
  nn::ResNet widen(nn::ResNetOptions(32, 64, 16));
  EXPECT_TRUE(torch::allclose(widen(x, temb), widen->conv3(x)));
}

TEST(ResNet, ScaleShiftTimeInjection) {
  torch::manual_seed(1);
  nn::ResNet r(nn::ResNetOptions(8, 8, 4).num_groups(4));
  test::randomize(*r);
  auto x = torch::randn({1, 8, 4, 4});
  auto temb = torch::randn({1, 4});
  // h = conv2(silu(GN2(conv1(silu(GN1 x)))·(1 + a) + b)) + x, (a, b) = chunk(time_layer(silu(temb)))
  auto h = r->conv1(torch::silu(torch::group_norm(x, 4, r->norm1->weight, r->norm1->bias)));
  auto ab = torch::linear(torch::silu(temb), r->time_layer->weight, r->time_layer->bias);
  auto a = ab.slice(1, 0, 8).view({1, 8, 1, 1}), b = ab.slice(1, 8, 16).view({1, 8, 1, 1});
  h = torch::group_norm(h, 4, r->norm2->weight, r->norm2->bias) * (1 + a) + b;
  auto expected = r->conv2(torch::silu(h)) + x;
  EXPECT_TRUE(torch::allclose(r(x, temb), expected, 1e-5, 1e-5));
}

TEST(Attention, FusedOpEqualsSoftmaxOfScaledScores) {
  torch::manual_seed(2);
  auto q = torch::randn({2, 4, 6, 8}), k = torch::randn({2, 4, 5, 8}), v = torch::randn({2, 4, 5, 8});
  auto mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 0, 1, 0}}, torch::kFloat);
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0);
  scores = scores.masked_fill(mask.view({2, 1, 1, 5}) == 0, -INFINITY);
  auto expected = torch::matmul(torch::softmax(scores, -1), v);
  EXPECT_TRUE(torch::allclose(compat::scaled_dot_product_attention(q, k, v, mask), expected, 1e-5, 1e-5));
}

// The reference's 2-D attention written out in plain ops: separate self- and cross-attention softmaxes.
torch::Tensor spatial_attention_by_hand(nn::SpatialAttentionImpl& a, const torch::Tensor& x, const torch::Tensor& cond,
                                        const torch::Tensor& mask) {
  const int64_t b = x.size(0), c = x.size(1), heads = a.options.num_heads(), d = c / heads, n = x.size(2) * x.size(3);
  auto qkv = a.qkv(a.norm(x)).reshape({b, 3 * c, n});
  auto q = qkv.slice(1, 0, c).reshape({b * heads, d, n}), k = qkv.slice(1, c, 2 * c).reshape({b * heads, d, n}),
       v = qkv.slice(1, 2 * c, 3 * c).reshape({b * heads, d, n});
  auto attend = [&](const torch::Tensor& kk, const torch::Tensor& vv, const torch::Tensor& m) {
    auto w = torch::einsum("bct,bcs->bts", {q, kk}) / std::sqrt(static_cast<double>(d));
    if (m.defined()) w = w.masked_fill(m.repeat_interleave(heads, 0).unsqueeze(1) == 0, -INFINITY);
    return torch::einsum("bts,bcs->bct", {torch::softmax(w, -1), vv}).reshape({b, c, n});
  };
  auto h = attend(k, v, {});
  auto kv = a.kv_cond(a.norm_cond(cond)).transpose(1, 2);  // [B, 2C, L]
  const int64_t len = cond.size(1);
  h = h + attend(kv.slice(1, 0, c).reshape({b * heads, d, len}), kv.slice(1, c, 2 * c).reshape({b * heads, d, len}), mask);
  auto out = x + a.proj_out(h.reshape_as(x));
  return out + a.ffn->forward(out);
}

TEST(Attention, SpatialAttentionSumsSeparateSelfAndCrossSoftmaxes) {
  torch::manual_seed(3);
  nn::SpatialAttention a(nn::SpatialAttentionOptions(64).num_heads(8).cond_dim(12).ffn(true));
  test::randomize(*a);
  auto x = torch::randn({2, 64, 4, 4}), cond = torch::randn({2, 5, 12});
  auto mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}, torch::kFloat);
  auto ours = a(x, cond, mask);
  EXPECT_TRUE(torch::allclose(ours, spatial_attention_by_hand(*a, x, cond, mask), 1e-4, 1e-5));
  // Masked tokens have no effect at all.
  auto cond2 = cond.clone();
  cond2[1].slice(0, 3, 5).normal_();
  EXPECT_TRUE(torch::allclose(a(x, cond2, mask)[1], ours[1], 1e-6, 1e-6));
}

TEST(Attention, LMBlockIgnoresPaddingAndStartsAsIdentity) {
  torch::manual_seed(4);
  nn::LMAttentionBlock block(16, 8);
  auto x = torch::randn({2, 6, 16});
  auto mask = torch::tensor({{1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 0, 0}}, torch::kFloat);
  EXPECT_TRUE(torch::equal(block(x, mask), x));  // zero-initialised proj_out and MLP output
  test::randomize(*block);
  auto y = block(x, mask);
  auto x2 = x.clone();
  x2[1].slice(0, 4, 6).normal_();
  EXPECT_TRUE(torch::allclose(block(x2, mask)[1].slice(0, 0, 4), y[1].slice(0, 0, 4), 1e-6, 1e-6));
}

TEST(ResNetBlock, UpBlockConcatenatesOneSkipPerResNetAndUpsamples) {
  torch::manual_seed(5);
  nn::ResNetBlock up(nn::ResNetBlockOptions({48, 40}, 32, 16).num_groups(8).resample(nn::Resample::Up));
  auto x = torch::randn({1, 32, 4, 4});
  std::vector<torch::Tensor> skips = {torch::randn({1, 16, 4, 4}), torch::randn({1, 8, 4, 4})};
  auto y = up->forward(x, torch::randn({1, 16}), &skips, nullptr, {}, std::nullopt);
  EXPECT_TRUE(skips.empty());
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 32, 8, 8}));
  nn::ResNetBlock down(nn::ResNetBlockOptions({32, 32}, 32, 16).num_groups(8).resample(nn::Resample::Down));
  std::vector<torch::Tensor> acts;
  auto z = down->forward(x, torch::randn({1, 16}), nullptr, &acts, {}, std::nullopt);
  EXPECT_EQ(acts.size(), 3u);  // two ResNet outputs and the downsampled one
  EXPECT_EQ(z.sizes(), (std::vector<int64_t>{1, 32, 2, 2}));
}

}  // namespace
}  // namespace mdm
