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

// One DiMR branch (DiMR §3.1; dimr-facts.md): a stack of Transformer or ConvNeXt blocks whose features and
// prediction have `resolution`² positions. The input is the highest level's noisy image, area-downsampled to
// resolution·patch_size and cut into patch_size² patches (a stride-patch_size convolution).
struct DiMRBranchConfig {
  std::string block = "transformer";  // transformer | convnext
  int64_t resolution = 16;            // feature and prediction resolution of this branch
  int64_t patch_size = 1;             // the input layer's kernel = stride
  int64_t dim = 960;                  // feature width
  int64_t hidden_dim = 1920;          // gated MLP hidden width
  int64_t num_heads = 16;             // transformer: attention heads
  int64_t kernel_size = 7;            // convnext: depthwise kernel
  // Blocks as the reference counts them: the stack has num_blocks / 2 · 2 + 1 blocks (U-ViT: an in-half, a
  // middle block, an out-half with a long skip each).
  int64_t num_blocks = 39;
  double dropout = 0.0;               // on each residual branch
};

// DiMR (arch: dimr). Defaults: DiMR-XL/2R's settings that are not per branch.
struct DiMRConfig {
  std::vector<DiMRBranchConfig> branches;  // lowest resolution first; the first is the Transformer branch
  // Noise schedule of every level (one noisy image; the levels are its sum-pool pyramid): the reference's
  // Stable Diffusion betas.
  std::string schedule = "scaled-linear";
  int64_t final_kernel_size = 3;  // output convolution of every branch
};

struct ModelConfig {
  std::string arch = "unet";  // unet | nested_unet | dimr
  int64_t input_channels = 3;
  int64_t output_channels = 3;
  int64_t emb_channels = 1024;  // width T of the time embedding, shared by every nesting level
  ConditioningKind conditioning = ConditioningKind::Text;
  int64_t text_feature_dim = 2048;               // width of the text encoder's output (FLAN-T5-XL: 2048)
  int64_t lm_feature_projected_channels = 1024;  // lm_proj output width; 0 = no projection
  int64_t num_lm_attn_layers = 2;                // trainable self-attention blocks over the text features
  bool masked_cross_attention = true;            // use the token mask in cross-attention and LM layers
  int64_t num_classes = 0;                       // with conditioning: class (index num_classes = null class)
  UNetConfig unet;                               // the outermost level (unet, nested_unet)
  DiMRConfig dimr;                               // arch: dimr

  bool is_dimr() const { return arch == "dimr"; }

  // Width of the conditioning tokens seen by cross-attention (after lm_proj, if any).
  int64_t cond_dim() const {
    if (conditioning != ConditioningKind::Text) return 0;
    return lm_feature_projected_channels > 0 ? lm_feature_projected_channels : text_feature_dim;
  }
  // The UNet of every nesting level, outermost first.
  std::vector<const UNetConfig*> levels() const;
  // The image resolution of every nesting level (DiMR: branch), lowest first (e.g. S64S256: {64, 256}).
  std::vector<int64_t> level_resolutions() const;
  // The noise schedule name of every level, lowest first ("" = the default cosine of the level).
  std::vector<std::string> level_schedules() const;
};

std::string to_string(ConditioningKind kind);

}  // namespace mdm
