// Config parsing: the paper's defaults, inheritance between levels, the resolved-config round trip,
// and the reference implementation's YAML layout.
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace mdm {
namespace {

TEST(Config, DefaultsAreThePapersMdmS64) {
  // Appendix A, MDM-S64, and Appendix B's optimiser.
  const Config c = parse_config("name: x\n", "defaults.yaml");
  const auto& m = c.model;
  EXPECT_EQ(m.arch, "unet");
  EXPECT_EQ(m.unet.resolutions, (std::vector<int64_t>{64, 32, 16}));
  EXPECT_EQ(m.unet.resolution_channels, (std::vector<int64_t>{256, 512, 768}));
  EXPECT_EQ(m.unet.num_res_blocks, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(m.unet.num_attn_layers_per_block, (std::vector<int64_t>{0, 1, 5}));
  EXPECT_EQ(m.unet.num_heads, 8);
  EXPECT_EQ(m.unet.schedule, "cosine");
  EXPECT_EQ(m.emb_channels, 1024);
  EXPECT_EQ(m.num_lm_attn_layers, 2);
  EXPECT_EQ(m.lm_feature_projected_channels, 1024);
  EXPECT_EQ(c.train.optimizer.name, "adam");
  EXPECT_DOUBLE_EQ(c.train.optimizer.lr, 1e-4);
  EXPECT_EQ(c.train.optimizer.betas, (std::vector<double>{0.9, 0.99}));
  EXPECT_DOUBLE_EQ(c.train.optimizer.eps, 1e-8);
  EXPECT_EQ(c.train.warmup_steps, 30000);
  EXPECT_DOUBLE_EQ(c.train.grad_clip, 2.0);
  EXPECT_DOUBLE_EQ(c.train.ema_decay, 0.9999);
  EXPECT_EQ(c.train.precision, "bf16");
  EXPECT_EQ(c.sample.steps, 250);
  EXPECT_EQ(c.sample.threshold, "dynamic");
  ASSERT_EQ(c.train.stages.size(), 1u);
  EXPECT_EQ(c.train.stages[0].resolutions, (std::vector<int64_t>{64}));
}

TEST(Config, InnerLevelsInheritHeadsGroupsAndDropoutAndGetShiftedSchedules) {
  const Config c = load_config(test::config_file("tiny_s16s32.yaml"));
  const auto levels = c.model.levels();
  ASSERT_EQ(levels.size(), 2u);
  EXPECT_EQ(levels[0]->num_groups_norm, 8);
  EXPECT_EQ(levels[1]->num_groups_norm, 8);  // inherited from the outer level
  EXPECT_EQ(levels[0]->num_heads, 8);
  EXPECT_EQ(levels[1]->num_heads, 4);
  EXPECT_EQ(levels[0]->schedule, "cosine-shift2");  // filled in: 32 / 16
  EXPECT_EQ(levels[1]->schedule, "cosine");
  EXPECT_EQ(c.model.level_resolutions(), (std::vector<int64_t>{16, 32}));
}

TEST(Config, ResolvedConfigRoundTrips) {
  for (const char* name : {"cc12m_s64s256.yaml", "tiny_s16s32.yaml", "reference/cc12m_1024x1024.yaml"}) {
    const Config c = load_config(test::config_file(name));
    const std::string yaml = to_yaml(c);
    const Config again = parse_config(yaml, "resolved.yaml");
    EXPECT_EQ(to_yaml(again), yaml) << name;
  }
}

TEST(Config, ErrorNamesTheFileAndLine) {
  try {
    parse_config("name: x\nmodel:\n  emb_channels: 1024\n  num_res_block: [2, 2, 2]\n", "configs/x.yaml");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "configs/x.yaml:4: model.num_res_block is not a known key (did you mean 'num_res_blocks'?)");
  }
}

TEST(Config, MissingFileIsAConfigError) {
  EXPECT_THROW(load_config("/nonexistent/run.yaml"), ConfigError);
}

// The reference's own 256×256 layout, written from its documented fields (reference-facts.md §2):
// it must give exactly the model of configs/reference/cc12m_256x256.yaml.
constexpr const char* kReference256 = R"(
name: cc12m_256x256
model: nested_unet
vision_model: nested_unet
output_dir: /mnt/data/outputs
sample_image_size: 256
lr: 5.0e-05
warmup_steps: 10000
gradient_clip_norm: 2
fp16: 0
mixed_ratio: '2:1'
diffusion_config:
  sampler_config:
    num_diffusion_steps: 1000
    prediction_type: V_PREDICTION
    loss_target_type: DDPM
    schedule_type: DEEPFLOYD
    schedule_shifted: true
  use_vdm_loss_weights: false
  use_double_loss: true
  no_use_residual: true
unet_config:
  attention_levels: []
  conditioning_feature_dim: -1
  conditioning_feature_proj_dim: -1
  initialize_inner_with_pretrained: None
  inner_config:
    attention_levels: [1, 2]
    conditioning_feature_dim: -1
    conditioning_feature_proj_dim: 2048
    masked_cross_attention: 0
    micro_conditioning: scale:64
    nesting: true
    num_attention_layers: [0, 1, 5]
    num_lm_head_layers: 0
    num_resnets_per_resolution: [2, 2, 2]
    resnet_config: {dropout: 0.0, num_channels: -1, num_groups_norm: 32, output_channels: -1, use_attention_ffn: true}
    resolution_channels: [256, 512, 768]
    skip_cond_emb: false
    skip_mid_blocks: false
    temporal_dim: null
  micro_conditioning: scale:256
  num_attention_layers: [0, 0, 0]
  num_resnets_per_resolution: [2, 2, 1]
  resnet_config: {dropout: 0.0, num_channels: -1, num_groups_norm: 32, output_channels: -1, use_attention_ffn: false}
  resolution_channels: [64, 128, 256]
  skip_cond_emb: true
  skip_mid_blocks: true
  skip_normalization: true
  temporal_dim: 1024
)";

std::string model_yaml(Config c) {
  Config only_model;
  only_model.model = c.model;
  return to_yaml(only_model);
}

TEST(Config, ReadsTheReferenceLayout) {
  const Config ref = parse_config(kReference256, "cc12m_256x256.yaml");
  const Config ours = load_config(test::config_file("reference/cc12m_256x256.yaml"));
  EXPECT_EQ(model_yaml(ref), model_yaml(ours));
  EXPECT_EQ(ref.diffusion.prediction, "v");
  EXPECT_EQ(ref.diffusion.loss_target, "eps");
  EXPECT_DOUBLE_EQ(ref.train.optimizer.lr, 5e-5);
  EXPECT_EQ(ref.train.warmup_steps, 10000);
  EXPECT_EQ(ref.sample.threshold, "clip");
}

TEST(Config, ReferenceLayoutKeepsItsOwnStrictness) {
  std::string bad = kReference256;
  bad.replace(bad.find("skip_normalization: true"), 24, "skip_normalisation: true");
  try {
    parse_config(bad, "ref.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unet_config.skip_normalisation is not a known key"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mdm
