// DiMR's Transformer block (DiMR §3.1, Fig. 2; the reference's TransformerBlock):
//   x = x + Attn(TDRMSNorm(x, t)),   x = x + GatedMLP(x, t)   (gated_mlp.h)
// on tokens [B, N, D]. The attention is the shared SDPA path (attention.h → compat.h). With text
// conditioning the text tokens' keys and values are appended to the self-attention's (one softmax over
// image and text keys, masked at text padding), as the reference's condition_key_value.
#pragma once

#include <mdm/nn/gated_mlp.h>
#include <mdm/nn/td_norm.h>
#include <torch/torch.h>

#include <optional>

namespace mdm::nn {

struct TransformerBlockOptions {
  TransformerBlockOptions(int64_t dim, int64_t hidden_dim) : dim_(dim), hidden_dim_(hidden_dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, hidden_dim);
  TORCH_ARG(int64_t, num_heads) = 16;
  TORCH_ARG(int64_t, cond_dim) = 0;  // > 0: text tokens of this width join the keys and values
  TORCH_ARG(double, dropout) = 0.0;
};

// The attention half (the reference's SelfAttention: keys norm, query_key_value, condition_key_value, dense).
class TokenSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit TokenSelfAttentionImpl(const TransformerBlockOptions& options);
  // x: [B, N, D]; cond: [B, L, cond_dim] (with cond_dim > 0); cond_mask: [B, L], 1 = a token.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& time, const torch::Tensor& cond = {},
                        const std::optional<torch::Tensor>& cond_mask = std::nullopt);

  TransformerBlockOptions options;
  TDRMSNorm norm{nullptr};
  torch::nn::Linear query_key_value{nullptr};      // D → 3D, no bias
  torch::nn::Linear condition_key_value{nullptr};  // cond_dim → 2D, no bias (text only)
  torch::nn::Linear dense{nullptr};                // D → D
};
TORCH_MODULE(TokenSelfAttention);

class TransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TransformerBlockImpl(const TransformerBlockOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& time, const torch::Tensor& cond = {},
                        const std::optional<torch::Tensor>& cond_mask = std::nullopt);

  TokenSelfAttention block1{nullptr};
  GatedMLP block2{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(TransformerBlock);

}  // namespace mdm::nn
