// Attention layers of the UNet family (reference-facts.md §3.3, §3.5) and the head helpers DiMR's
// Transformer block shares. Every one goes through the fused scaled-dot-product op of compat.h.
#pragma once

#include <torch/torch.h>

#include <optional>

namespace mdm::nn {

// [B, L, heads·D] → [B, heads, L, D]; channel index = head·D + i (the reference's reshapes, and DiMR's).
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads);
// [B, heads, L, D] → [B, L, heads·D].
torch::Tensor merge_heads(const torch::Tensor& x);

// Multi-head attention over [B, H, L, D] tensors with an optional key mask [B, Lk] (1 = attend).
torch::Tensor multi_head_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   const std::optional<torch::Tensor>& key_mask);

struct SpatialAttentionOptions {
  explicit SpatialAttentionOptions(int64_t channels) : channels_(channels) {}
  TORCH_ARG(int64_t, channels);
  TORCH_ARG(int64_t, num_heads) = 8;
  TORCH_ARG(int64_t, cond_dim) = 0;  // > 0: cross-attention to conditioning tokens of this width
  TORCH_ARG(bool, ffn) = false;      // GroupNorm → 1×1 (4C) → GELU → zero-init 1×1 after the attention
};

// 2-D self-attention over the H·W positions plus, with cond_dim > 0, cross-attention to the text tokens.
// The two attentions have *separate* softmaxes whose outputs are summed, as the reference:
// h = Attn(q, k, v) + Attn(q, k_c, v_c; mask); x = x + proj_out(h); x = x + ffn(x).
class SpatialAttentionImpl : public torch::nn::Module {
 public:
  explicit SpatialAttentionImpl(const SpatialAttentionOptions& options);
  // x: [B, C, H, W]; cond: [B, L, cond_dim] (needed when cond_dim > 0); cond_mask: [B, L]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cond = {},
                        const std::optional<torch::Tensor>& cond_mask = std::nullopt);

  SpatialAttentionOptions options;
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d qkv{nullptr};
  torch::nn::LayerNorm norm_cond{nullptr};
  torch::nn::Linear kv_cond{nullptr};
  torch::nn::Conv2d proj_out{nullptr};
  torch::nn::Sequential ffn{nullptr};
};
TORCH_MODULE(SpatialAttention);

// Self-attention over a token sequence [B, L, C] (the reference's SelfAttention1D): LayerNorm, fused
// qkv Linear, masked multi-head attention, zero-init proj_out, residual.
class TokenAttentionImpl : public torch::nn::Module {
 public:
  TokenAttentionImpl(int64_t channels, int64_t num_heads);
  torch::Tensor forward(const torch::Tensor& x, const std::optional<torch::Tensor>& mask);

  int64_t num_heads;
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear qkv{nullptr};
  torch::nn::Linear proj_out{nullptr};
};
TORCH_MODULE(TokenAttention);

// x + Linear(GELU(Linear(LayerNorm(x)))) with a zero-init last layer (keys main.{0,1,3}).
class TokenMLPImpl : public torch::nn::Module {
 public:
  TokenMLPImpl(int64_t channels, int64_t multiplier = 4);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Sequential main{nullptr};
};
TORCH_MODULE(TokenMLP);

// One trainable layer over the text encoder's features (the paper's num_lm_attn_layers; the
// reference's SelfAttention1DBlock, keys lm_head.N.attn.*, lm_head.N.mlp.main.*).
class LMAttentionBlockImpl : public torch::nn::Module {
 public:
  LMAttentionBlockImpl(int64_t channels, int64_t num_heads);
  torch::Tensor forward(const torch::Tensor& x, const std::optional<torch::Tensor>& mask);

  TokenAttention attn{nullptr};
  TokenMLP mlp{nullptr};
};
TORCH_MODULE(LMAttentionBlock);

}  // namespace mdm::nn
