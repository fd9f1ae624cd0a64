// A valid two-level nested model (64² around 32²) in libmdm's YAML layout, small enough to build in
// milliseconds; the config tests break or override one key of it at a time.
#pragma once

namespace mdm::test {

inline constexpr const char* kSmallNestedYaml = R"(name: base
model:
  arch: nested_unet
  resolutions: [64, 32]
  resolution_channels: [32, 64]
  num_res_blocks: [1, 1]
  num_attn_layers_per_block: [0, 0]
  inner_config:
    resolutions: [32, 16]
    resolution_channels: [64, 128]
    num_res_blocks: [1, 1]
    num_attn_layers_per_block: [0, 1]
  emb_channels: 64
  text_feature_dim: 32
  lm_feature_projected_channels: 64
  num_lm_attn_layers: 1
)";

}  // namespace mdm::test
