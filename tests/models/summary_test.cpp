// Parameter attribution and the analytic FLOP count, against a model worked out by hand.
#include "test_util.h"

namespace mdm {
namespace {

// One level, one ResNet, no attention, no mid blocks, no conditioning: small enough to count by hand.
ModelConfig hand_model() {
  ModelConfig m;
  m.conditioning = ConditioningKind::None;
  m.emb_channels = 16;
  m.unet.resolutions = {8};
  m.unet.resolution_channels = {32};
  m.unet.num_res_blocks = {1};
  m.unet.num_attn_layers_per_block = {0};
  m.unet.skip_mid_blocks = true;
  m.unet.num_groups_norm = 8;
  fill_defaults(m);
  return m;
}

TEST(Summary, FlopsOfAModelCountedByHand) {
  const ModelConfig m = hand_model();
  const double px = 8 * 8;
  const double temb = 2.0 * (4 * 16 + 16 * 16);
  const double conv_in = 2.0 * 3 * 32 * 9 * px, conv_out = 2.0 * 32 * 3 * 9 * px;
  const double down = 2.0 * 32 * 32 * 9 * px * 2 + 2.0 * 16 * 64;  // conv1, conv2, time_layer
  // Up: two ResNets over [x, skip] = 64 channels in: conv1 64→32, conv2, 1×1 shortcut, time_layer.
  const double up = 2 * (2.0 * 64 * 32 * 9 * px + 2.0 * 32 * 32 * 9 * px + 2.0 * 64 * 32 * px + 2.0 * 16 * 64);
  EXPECT_DOUBLE_EQ(forward_flops(m), temb + conv_in + conv_out + down + up);
}

TEST(Summary, AttentionFlopsGrowWithTheSquareOfThePositions) {
  ModelConfig m = hand_model();
  m.unet.num_attn_layers_per_block = {1};
  const double with = forward_flops(m);
  const double without = forward_flops(hand_model());
  const double n = 64, c = 32;
  // Three attention layers (one after each of the 1 down + 2 up ResNets): qkv, QKᵀ, AV, proj_out.
  EXPECT_DOUBLE_EQ(with - without, 3 * (2 * c * 3 * c * n + 4 * n * n * c + 2 * c * c * n));
}

TEST(Summary, ParametersByPartAddUpToTheModel) {
  const ModelConfig m = load_config(test::config_file("tiny_s16s32.yaml")).model;
  auto model = build_model(m);
  const ModelSummary s = summarize(m, *model);
  ASSERT_EQ(s.levels.size(), 2u);
  int64_t sum = s.conditioning_parameters;
  for (const auto& l : s.levels) sum += l.parameters + l.adapter_parameters;
  EXPECT_EQ(sum, count_parameters(*model));
  EXPECT_EQ(s.total_parameters, count_parameters(*model));
  // Adapters: in and out 3×3 convolutions between 32 (outer last) and 32 (inner first) channels.
  EXPECT_EQ(s.levels[0].adapter_parameters, 2 * (32 * 32 * 9 + 32));
  EXPECT_EQ(s.levels[1].adapter_parameters, 0);
  // lm_proj 24→32, one LM block at width 32, cond_emb 32→64 (no bias).
  const int64_t lm_block = 2 * 32 + (32 * 96 + 96) + (32 * 32 + 32) + 2 * 32 + (32 * 128 + 128) + (128 * 32 + 32);
  EXPECT_EQ(s.conditioning_parameters, (24 * 32 + 32) + lm_block + 32 * 64);
  EXPECT_NEAR(s.total_flops, forward_flops(m), 1.0);
  EXPECT_NE(s.to_string().find("total: "), std::string::npos);
}

}  // namespace
}  // namespace mdm
