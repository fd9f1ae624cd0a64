#include <mdm/models/text_conditioning.h>
#include <mdm/nn/attention.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace mdm {

void register_text_layers(torch::nn::Module& owner, const ModelConfig& model, int64_t num_heads,
                          torch::nn::Linear& lm_proj, torch::nn::ModuleList& lm_head) {
  if (model.lm_feature_projected_channels > 0) {
    lm_proj = owner.register_module(
        "lm_proj", torch::nn::Linear(model.text_feature_dim, model.lm_feature_projected_channels));
  }
  lm_head = owner.register_module("lm_head", torch::nn::ModuleList());
  for (int64_t i = 0; i < model.num_lm_attn_layers; ++i) {
    lm_head->push_back(nn::LMAttentionBlock(model.cond_dim(), num_heads));
  }
}

TextTokens encode_text(const ModelConfig& model, const Conditioning& cond, torch::nn::Linear& lm_proj,
                       torch::nn::ModuleList& lm_head) {
  if (!cond.text.defined() || cond.text.dim() != 3 || cond.text.size(2) != model.text_feature_dim) {
    throw Error(fmt::format("denoiser: a text-conditioned model needs Conditioning::text of shape [B, L, {}], got {}",
                            model.text_feature_dim, cond.text.defined() ? fmt::format("{}", cond.text.sizes()) : "none"));
  }
  auto c = lm_proj ? lm_proj(cond.text) : cond.text;
  std::optional<torch::Tensor> mask;
  if (cond.text_mask.defined()) mask = cond.text_mask.to(c.scalar_type());
  const bool masked = model.masked_cross_attention;
  for (const auto& head : *lm_head) c = head->as<nn::LMAttentionBlockImpl>()->forward(c, masked ? mask : std::nullopt);
  TextTokens out;
  // Masked mean of the tokens; the reference takes the plain mean when the LM layers ran unmasked.
  if (!mask || (!masked && !lm_head->is_empty())) {
    out.pooled = c.mean(1);
  } else {
    out.pooled = (mask->unsqueeze(-1) * c).sum(1) / mask->sum(1, /*keepdim=*/true);
  }
  out.tokens = c;
  if (masked) out.mask = mask;
  return out;
}

}  // namespace mdm
