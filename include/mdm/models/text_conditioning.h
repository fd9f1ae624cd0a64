// The text pathway every denoiser shares (formulas.md "Text conditioning"): the text encoder's features →
// lm_proj → num_lm_attn_layers LM attention blocks → tokens for (cross-)attention, and their masked mean
// (the pooled text, which the UNet adds to the time embedding and DiMR turns into a condition token).
#pragma once

#include <mdm/config/model_config.h>
#include <mdm/models/denoiser.h>
#include <torch/torch.h>

#include <optional>

namespace mdm {

struct TextTokens {
  torch::Tensor tokens;               // [B, L, cond_dim]
  std::optional<torch::Tensor> mask;  // [B, L] key mask for attention (with masked_cross_attention)
  torch::Tensor pooled;               // [B, cond_dim]
};

// Registers `lm_proj` (when model.lm_feature_projected_channels > 0) and `lm_head` on `owner`, under those
// names (the reference's keys); the LM attention blocks have `num_heads` heads.
void register_text_layers(torch::nn::Module& owner, const ModelConfig& model, int64_t num_heads,
                          torch::nn::Linear& lm_proj, torch::nn::ModuleList& lm_head);

// Runs the layers on Conditioning::text / text_mask; throws mdm::Error when the text is missing or misshapen.
TextTokens encode_text(const ModelConfig& model, const Conditioning& cond, torch::nn::Linear& lm_proj,
                       torch::nn::ModuleList& lm_head);

}  // namespace mdm
