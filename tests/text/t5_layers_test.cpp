// T5 layers against numbers worked out by hand from Hugging Face's formulas (modeling_t5.py).
#include <mdm/text/t5_layers.h>

#include <cmath>
#include <limits>

#include "test_util.h"

namespace mdm::text {
namespace {

int64_t bucket(int64_t relative, int64_t num_buckets, int64_t max_distance) {
  return relative_position_bucket(torch::tensor({relative}, torch::kLong), num_buckets, max_distance).item<int64_t>();
}

// 32 buckets, max distance 128 (every FLAN-T5): 16 per sign, exact below 8, then
// 8 + ⌊log(n/8) / log(16) · 8⌋ capped at 15; positive distances (keys after the query) +16.
TEST(T5RelativePositionBucket, FlanT5TableAtKnownDistances) {
  const std::vector<std::pair<int64_t, int64_t>> expected = {
      {0, 0},   {1, 17},   {-1, 1},  {7, 23},  {-7, 7},   {8, 24},   {-8, 8},    {11, 24},  {12, 25},  {15, 25},
      {16, 26}, {-16, 10}, {22, 26}, {23, 27}, {31, 27},  {32, 28},  {-32, 12},  {45, 28},  {46, 29},  {63, 29},
      {64, 30}, {-64, 14}, {90, 30}, {91, 31}, {127, 31}, {128, 31}, {-128, 15}, {129, 31}, {500, 31}, {-500, 15}};
  for (const auto& [distance, b] : expected) EXPECT_EQ(bucket(distance, 32, 128), b) << "distance " << distance;
}

// 16 buckets, max distance 64: 8 per sign, exact below 4, then 4 + ⌊log(n/4) / log(16) · 4⌋ capped at 7:
// the edges fall exactly on n = 8, 16, 32 (log ratios 1/4, 2/4, 3/4), where float rounding could flip them.
TEST(T5RelativePositionBucket, SmallTableWithEdgesOnPowersOfTwo) {
  const std::vector<std::pair<int64_t, int64_t>> expected = {
      {0, 0},   {1, 9},   {-1, 1},  {3, 11},  {-3, 3},  {4, 12},  {7, 12},  {-7, 4},  {8, 13},  {-8, 5},
      {15, 13}, {16, 14}, {-16, 6}, {31, 14}, {32, 15}, {-32, 7}, {63, 15}, {64, 15}, {-64, 7}, {1000, 15}};
  for (const auto& [distance, b] : expected) EXPECT_EQ(bucket(distance, 16, 64), b) << "distance " << distance;
}

TEST(T5RelativePositionBucket, SequenceTableIsKeyMinusQuery) {
  auto table = relative_position_buckets(5, 32, 128);  // [query, key]
  ASSERT_EQ(table.sizes(), (std::vector<int64_t>{5, 5}));
  EXPECT_EQ(table.scalar_type(), torch::kLong);
  for (int64_t q = 0; q < 5; ++q) {
    for (int64_t k = 0; k < 5; ++k) EXPECT_EQ(table[q][k].item<int64_t>(), bucket(k - q, 32, 128));
  }
  EXPECT_EQ(table[0][4].item<int64_t>(), 20);  // key 4 after the query: 16 + 4
  EXPECT_EQ(table[4][0].item<int64_t>(), 4);
}

TEST(T5LayerNorm, IsRmsNormWithoutMeanOrBias) {
  T5LayerNorm norm(2, /*eps=*/0.5);
  {
    torch::NoGradGuard no_grad;
    norm->weight.copy_(torch::tensor({1.0f, 2.0f}));
  }
  // mean(x²) = 12.5; + eps = 13: y = w · x / sqrt(13)
  auto y = norm(torch::tensor({{3.0f, 4.0f}}));
  EXPECT_NEAR(y[0][0].item<float>(), 3.0 / std::sqrt(13.0), 1e-6);
  EXPECT_NEAR(y[0][1].item<float>(), 8.0 / std::sqrt(13.0), 1e-6);
  // A constant row keeps its value (a LayerNorm would give 0).
  T5LayerNorm plain(4, 0.0);
  plain->reset_parameters();
  auto c = plain(torch::full({1, 4}, -2.0f));
  EXPECT_TRUE(torch::allclose(c, torch::full({1, 4}, -1.0f)));
}

TEST(T5LayerNorm, Bf16WeightsGiveBf16CloseToFloat) {
  torch::manual_seed(0);
  T5LayerNorm norm(64, 1e-6);
  {
    torch::NoGradGuard no_grad;
    norm->weight.copy_(1.0 + 0.1 * torch::randn({64}));
  }
  auto x = 100.0 * torch::randn({3, 64});
  auto y32 = norm(x);
  norm->to(torch::kBFloat16);
  auto y16 = norm(x.to(torch::kBFloat16));
  EXPECT_EQ(y16.scalar_type(), torch::kBFloat16);
  // Three bf16 roundings (weight, normalised x, product) of 2⁻⁸ each at most.
  EXPECT_TRUE(((y16.to(torch::kFloat) - y32).abs() <= 0.02 * y32.abs() + 1e-3).all().item<bool>());
}

TEST(T5AttentionMask, PadsGetTheDtypesLowestValue) {
  auto bias = attention_mask_bias(torch::tensor({{1, 1, 0}}), torch::kFloat);
  ASSERT_EQ(bias.sizes(), (std::vector<int64_t>{1, 1, 1, 3}));
  EXPECT_EQ(bias[0][0][0][0].item<float>(), 0.0f);
  EXPECT_EQ(bias[0][0][0][2].item<float>(), std::numeric_limits<float>::lowest());
  auto b16 = attention_mask_bias(torch::tensor({{true, false}}), torch::kBFloat16);
  EXPECT_EQ(b16.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(b16[0][0][0][1].item<float>(), -3.3895313892515355e38f);
}

T5Config tiny_attention_config() {
  T5Config c;
  c.vocab_size = 4;
  c.d_model = 2;
  c.d_kv = 2;
  c.num_heads = 1;
  c.d_ff = 2;
  c.num_layers = 1;
  c.relative_attention_num_buckets = 4;
  c.relative_attention_max_distance = 2;
  return c;
}

// Identity projections: scores = x xᵀ = [[1, 0], [0, 4]] for x = [[1, 0], [0, 2]], with no 1/sqrt(2).
TEST(T5Attention, UnscaledScoresWithPositionBiasAndMask) {
  T5Attention attention(tiny_attention_config(), /*has_relative_attention_bias=*/true);
  {
    torch::NoGradGuard no_grad;
    for (auto* lin : {&attention->q, &attention->k, &attention->v, &attention->o}) (*lin)->weight.copy_(torch::eye(2));
    attention->relative_attention_bias->weight.copy_(torch::tensor({{10.0f}, {20.0f}, {30.0f}, {40.0f}}));
  }
  // 4 buckets: 2 per sign, max_exact 1; distance 0 → 0, −1 → 1, +1 → 2 + 1 = 3.
  auto bias = attention->compute_bias(2);
  ASSERT_EQ(bias.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_TRUE(torch::equal(bias, torch::tensor({{10.0f, 40.0f}, {20.0f, 10.0f}}).view({1, 1, 2, 2})));

  auto x = torch::tensor({{{1.0f, 0.0f}, {0.0f, 2.0f}}});
  auto out = attention(x, torch::zeros({1, 1, 2, 2}));
  const double e = std::exp(1.0), e4 = std::exp(4.0);
  auto expected = torch::tensor({{{e / (e + 1), 2 / (e + 1)}, {1 / (1 + e4), 2 * e4 / (1 + e4)}}}, torch::kFloat);
  EXPECT_TRUE(torch::allclose(out, expected, 1e-6, 1e-6)) << out;
  // An additive bias of ln 2 on key 1 doubles its weight; a masked key gets none.
  auto doubled = attention(x, torch::tensor({0.0f, static_cast<float>(std::log(2.0))}).view({1, 1, 1, 2}));
  EXPECT_NEAR(doubled[0][0][1].item<float>(), 2 * 2 / (e + 2), 1e-6);
  auto masked = attention(x, attention_mask_bias(torch::tensor({{1, 0}}), torch::kFloat));
  EXPECT_TRUE(torch::allclose(masked, torch::tensor({{{1.0f, 0.0f}, {1.0f, 0.0f}}})));
}

// Identity weights: gated gelu_new gives gelu_tanh(x) · x; relu gives relu(x).
TEST(T5DenseReluDense, GatedGeluNewAndRelu) {
  auto c = tiny_attention_config();
  T5DenseReluDense gated(c);
  ASSERT_TRUE(gated->kind.gated);
  {
    torch::NoGradGuard no_grad;
    for (auto* lin : {&gated->wi_0, &gated->wi_1, &gated->wo}) (*lin)->weight.copy_(torch::eye(2));
  }
  auto y = gated(torch::tensor({{1.0f, -0.5f}}));
  // gelu_new(x) = x/2 · (1 + tanh(sqrt(2/π) (x + 0.044715 x³))): 0.84119199, −0.15428599
  EXPECT_NEAR(y[0][0].item<float>(), 0.8411919906082768, 1e-6);
  EXPECT_NEAR(y[0][1].item<float>(), 0.07714299508742803, 1e-6);

  c.feed_forward_proj = "relu";
  T5DenseReluDense relu(c);
  ASSERT_FALSE(relu->kind.gated);
  EXPECT_TRUE(relu->wi_0.is_empty());
  {
    torch::NoGradGuard no_grad;
    relu->wi->weight.copy_(torch::tensor({{1.0f, 0.0f}, {0.0f, -1.0f}}));
    relu->wo->weight.copy_(torch::eye(2));
  }
  auto r = relu(torch::tensor({{2.0f, 3.0f}}));
  EXPECT_TRUE(torch::equal(r, torch::tensor({{2.0f, 0.0f}})));
}

}  // namespace
}  // namespace mdm::text
