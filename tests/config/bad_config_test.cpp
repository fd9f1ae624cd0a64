// Table-driven: every bad config is a ConfigError whose message names the file and the key path.
#include "small_nested_yaml.h"
#include "test_util.h"

namespace mdm {
namespace {

// A valid two-level nested model; each case below breaks one thing in it.
constexpr const char* kBase = test::kSmallNestedYaml;

struct BadCase {
  const char* name;
  const char* from;  // text in kBase to replace ("" = append `to`)
  const char* to;
  const char* expected;  // must appear in the message
};

const BadCase kCases[] = {
    {"unknown top-level key", "", "trainer: {}\n", "bad.yaml:17: trainer is not a known key"},
    {"unknown model key with a hint", "  emb_channels: 64\n", "  emb_channel: 64\n",
     "model.emb_channel is not a known key (did you mean 'emb_channels'?)"},
    {"unknown inner key", "    num_res_blocks: [1, 1]\n    num_attn", "    num_res_blocks: [1, 1]\n    heads: 4\n    num_attn",
     "model.inner_config.heads is not a known key"},
    {"wrong type: string for a list", "    num_res_blocks: [1, 1]\n    num_attn", "    num_res_blocks: two\n    num_attn",
     "model.inner_config.num_res_blocks must be a list of integers, got 'two'"},
    {"wrong type: list entry", "  resolution_channels: [32, 64]", "  resolution_channels: [32, 6.5]",
     "model.resolution_channels [1] must be an integer, got '6.5'"},
    {"wrong type: float for an integer", "  emb_channels: 64", "  emb_channels: 64.5", "model.emb_channels must be an integer"},
    {"wrong type: bool", "  num_lm_attn_layers: 1\n", "  num_lm_attn_layers: 1\n  masked_cross_attention: maybe\n",
     "model.masked_cross_attention must be true or false"},
    {"unequal lists", "    num_res_blocks: [1, 1]\n    num_attn", "    num_res_blocks: [1, 1, 1]\n    num_attn",
     "model.inner_config.num_res_blocks has 3 entries, resolution_channels has 2"},
    {"resolutions that do not halve", "    resolutions: [32, 16]", "    resolutions: [32, 12]",
     "model.inner_config.resolutions[1] is 12, but each level halves the previous one"},
    {"nest ratio not an integer", "    resolutions: [32, 16]", "    resolutions: [48, 24]",
     "model.inner_config.resolutions[0] is 48: the nest ratio 64 / 48 is not an integer"},
    {"inner model not where the outer ends", "    resolutions: [32, 16]", "    resolutions: [16, 8]",
     "model.inner_config.resolutions[0] is 16, but the outer level ends at 32"},
    {"channels not divisible by GroupNorm groups", "  resolution_channels: [32, 64]", "  resolution_channels: [32, 48]",
     "model.resolution_channels[1] is 48, not divisible by the 32 GroupNorm groups"},
    {"channels not divisible by heads", "    num_attn_layers_per_block: [0, 1]\n",
     "    num_attn_layers_per_block: [0, 1]\n    num_heads: 3\n",
     "model.inner_config.resolution_channels[1] is 128, not divisible by the 3 attention heads"},
    {"duplicate key in an inner level", "    num_attn_layers_per_block: [0, 1]\n",
     "    num_attn_layers_per_block: [0, 1]\n    resolution_channels: [64, 160]\n",
     "model.inner_config.resolution_channels appears twice"},
    {"arch nested without inner", "  arch: nested_unet", "  arch: unet", "model.inner_config is only allowed with arch: nested_unet"},
    {"unknown arch", "  arch: nested_unet", "  arch: nested_vit", "model.arch is 'nested_vit', expected one of: unet | nested_unet"},
    {"bad schedule", "  num_attn_layers_per_block: [0, 0]\n  inner",
     "  num_attn_layers_per_block: [0, 0]\n  schedule: cosine-shiftX\n  inner", "model.schedule is 'cosine-shiftX'"},
    {"emb_channels not a multiple of 8", "  emb_channels: 64", "  emb_channels: 60", "model.emb_channels is 60, must be a positive multiple of 8"},
    {"LM width not divisible by heads", "  lm_feature_projected_channels: 64", "  lm_feature_projected_channels: 60",
     "model.lm_feature_projected_channels is 60, not divisible by the 8 heads"},
    {"class conditioning without classes", "  num_lm_attn_layers: 1\n", "  num_lm_attn_layers: 1\n  conditioning: class\n",
     "model.num_classes must be positive with conditioning: class"},
    {"unknown conditioning", "  num_lm_attn_layers: 1\n", "  num_lm_attn_layers: 1\n  conditioning: texts\n",
     "model.conditioning must be one of text | class | none, got 'texts'"},
    {"zero res blocks", "  num_res_blocks: [1, 1]\n  num_attn", "  num_res_blocks: [1, 0]\n  num_attn",
     "model.num_res_blocks[1] must be at least 1, got 0"},
    {"skip_normalization on the innermost level", "    num_attn_layers_per_block: [0, 1]\n",
     "    num_attn_layers_per_block: [0, 1]\n    skip_normalization: true\n",
     "model.inner_config.skip_normalization has no effect on the innermost level"},
    {"skip_mid_blocks on an outer level", "  emb_channels: 64\n", "  emb_channels: 64\n  skip_mid_blocks: true\n",
     "model.skip_mid_blocks is set on an outer level"},
    {"bad prediction", "", "diffusion: {prediction: vv}\n", "diffusion.prediction is 'vv', expected one of: v | eps | x0"},
    {"loss weights for the wrong number of levels", "", "diffusion: {loss_weights: [1, 2, 3]}\n",
     "diffusion.loss_weights has 3 entries, the model has 2 resolution levels"},
    {"stage at a resolution the model lacks", "", "train: {stages: [{resolutions: [128], steps: 10}]}\n",
     "train.stages[0].resolutions names 128, which is not a level of the model (32, 64)"},
    {"stage without the inner level", "", "train: {stages: [{resolutions: [64], steps: 10}]}\n",
     "train.stages[0].resolutions must include 32"},
    {"unknown key in a stage", "", "train: {stages: [{resolutions: [32], step: 10}]}\n",
     "train.stages[0].step is not a known key (did you mean 'steps'?)"},
    {"unknown optimizer key", "", "train: {optimizer: {beta: [0.9, 0.99]}}\n", "train.optimizer.beta is not a known key"},
    {"percentile out of range", "", "sample: {threshold_percentile: 1.5}\n", "sample.threshold_percentile must be in (0, 1], got 1.5"},
    {"more sampling steps than the schedule", "", "sample: {steps: 2000}\n", "sample.steps is 2000, more than the 1000 steps"},
    {"duplicate key", "  emb_channels: 64\n", "  emb_channels: 64\n  emb_channels: 128\n", "model.emb_channels appears twice"},
    {"section that is not a mapping", "", "data: tsv\n", "data must be a mapping of keys, got 'tsv'"},
    {"invalid YAML", "  arch: nested_unet", "  arch: [nested_unet", "is not valid YAML"},
};

std::string make(const BadCase& c) {
  std::string text = kBase;
  if (std::string(c.from).empty()) return text + c.to;
  const size_t at = text.find(c.from);
  EXPECT_NE(at, std::string::npos) << c.name << ": the base config lacks '" << c.from << "'";
  return text.replace(at, std::string(c.from).size(), c.to);
}

TEST(BadConfig, BaseConfigIsValid) { EXPECT_NO_THROW(parse_config(kBase, "bad.yaml")); }

TEST(BadConfig, EveryCaseNamesTheFileAndKeyPath) {
  ASSERT_GE(std::size(kCases), 15u);
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    try {
      parse_config(make(c), "bad.yaml");
      ADD_FAILURE() << "no error for: " << c.name;
    } catch (const ConfigError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("bad.yaml", 0), 0u) << msg;
      EXPECT_NE(msg.find(c.expected), std::string::npos) << "message: " << msg << "\nexpected: " << c.expected;
    }
  }
}

TEST(BadConfig, MidBlockAttentionNeedsDivisibleChannels) {
  // The innermost level's middle block always has one attention layer.
  std::string text = kBase;
  const std::string from = "    resolution_channels: [64, 128]\n    num_res_blocks: [1, 1]\n    num_attn_layers_per_block: [0, 1]\n";
  ASSERT_NE(text.find(from), std::string::npos);
  text.replace(text.find(from), from.size(),
               "    resolution_channels: [64, 80]\n    num_res_blocks: [1, 1]\n    num_attn_layers_per_block: [0, 0]\n"
               "    num_groups_norm: 16\n");
  try {
    parse_config(text, "bad.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.inner_config.resolution_channels[1] is 80, not divisible by the attention "
                                         "GroupNorm's 32 groups (the middle block's attention)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace mdm
