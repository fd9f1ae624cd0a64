// The model part of a run's config: the MDM paper's Appendix A fields, one UNetConfig per nesting level.
// Defaults are the paper's MDM-S64 (Appendix A); docs/configs.md lists every key.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mdm {

enum class ConditioningKind { None, Text, Class };

// One nesting level: a UNet over `resolutions` (halving per level). A NestedUNet level also holds its
// inner model, which replaces the middle blocks and works on resolutions.back() (Appendix A's inner_config).
struct UNetConfig {
  std::vector<int64_t> resolutions = {64, 32, 16};
  std::vector<int64_t> resolution_channels = {256, 512, 768};
  // ResNets per level on the down path; the up path has one more (as the reference).
  std::vector<int64_t> num_res_blocks = {2, 2, 2};
  // Attention layers after each ResNet of a level (0 = no attention at that level).
  std::vector<int64_t> num_attn_layers_per_block = {0, 1, 5};
  int64_t num_heads = 8;
  // Noise schedule of this level's resolution: cosine | linear | cosine-shiftK (SNR / K^shift_power).
  // Empty = "cosine" for the innermost level and "cosine-shift{res/res_innermost}" above it.
  std::string schedule;
  bool attention_ffn = false;        // GroupNorm → 1×1 4C → GELU → 1×1 after every 2-D attention layer
  bool skip_mid_blocks = false;      // innermost level only: drop the two middle blocks
  bool skip_normalization = false;   // outer levels: feed z as is instead of z / std(z)
  bool skip_inner_unet_input = false;  // outer levels: no in_adapter, the inner model sees only its own z
  // Micro-conditioning: (name, default value) pairs, each a learned embedding added to the time embedding.
  std::vector<std::pair<std::string, double>> micro_conditioning;
  int64_t num_groups_norm = 32;      // GroupNorm groups of the ResNets and the output norm
  double dropout = 0.0;              // ResNet dropout after the second norm
  std::vector<UNetConfig> inner_config;  // zero or one entry: the nested inner model

  bool has_inner() const { return !inner_config.empty(); }
  const UNetConfig& inner() const { return inner_config.front(); }
  UNetConfig& inner() { return inner_config.front(); }
  int64_t num_levels() const { return static_cast<int64_t>(resolution_channels.size()); }
};

struct ModelConfig {
  std::string arch = "unet";  // unet | nested_unet
  int64_t input_channels = 3;
  int64_t output_channels = 3;
  int64_t emb_channels = 1024;  // width T of the time embedding, shared by every nesting level
  ConditioningKind conditioning = ConditioningKind::Text;
  int64_t text_feature_dim = 2048;               // width of the text encoder's output (FLAN-T5-XL: 2048)
  int64_t lm_feature_projected_channels = 1024;  // lm_proj output width; 0 = no projection
  int64_t num_lm_attn_layers = 2;                // trainable self-attention blocks over the text features
  bool masked_cross_attention = true;            // use the token mask in cross-attention and LM layers
  int64_t num_classes = 0;                       // with conditioning: class (index num_classes = null class)
  UNetConfig unet;                               // the outermost level

  // Width of the conditioning tokens seen by cross-attention (after lm_proj, if any).
  int64_t cond_dim() const {
    if (conditioning != ConditioningKind::Text) return 0;
    return lm_feature_projected_channels > 0 ? lm_feature_projected_channels : text_feature_dim;
  }
  // The UNet of every nesting level, outermost first.
  std::vector<const UNetConfig*> levels() const;
  // The image resolution of every nesting level, lowest first (e.g. S64S256: {64, 256}).
  std::vector<int64_t> level_resolutions() const;
};

std::string to_string(ConditioningKind kind);

}  // namespace mdm
