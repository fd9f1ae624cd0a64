#include <mdm/nn/attention.h>
#include <mdm/nn/transformer_block.h>

namespace mdm::nn {

TokenSelfAttentionImpl::TokenSelfAttentionImpl(const TransformerBlockOptions& o) : options(o) {
  TORCH_CHECK(o.dim() % o.num_heads() == 0, "TransformerBlock: dim ", o.dim(), " is not divisible by ", o.num_heads(),
              " heads");
  norm = register_module("norm", TDRMSNorm(o.dim()));
  if (o.cond_dim() > 0) {
    condition_key_value = register_module("condition_key_value", dimr_linear(o.cond_dim(), 2 * o.dim(), false));
  }
  query_key_value = register_module("query_key_value", dimr_linear(o.dim(), 3 * o.dim(), false));
  dense = register_module("dense", dimr_linear(o.dim(), o.dim()));
}

torch::Tensor TokenSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& time,
                                              const torch::Tensor& cond, const std::optional<torch::Tensor>& cond_mask) {
  const int64_t heads = options.num_heads();
  auto qkv = query_key_value(norm(x, time)).chunk(3, -1);  // 3 × [B, N, D]
  auto q = split_heads(qkv[0], heads), k = split_heads(qkv[1], heads), v = split_heads(qkv[2], heads);
  std::optional<torch::Tensor> keep;
  if (options.cond_dim() > 0) {
    TORCH_CHECK(cond.defined(), "TransformerBlock: a text-conditioned block called without text tokens");
    auto kv = condition_key_value(cond).chunk(2, -1);  // 2 × [B, L, D]
    k = torch::cat({k, split_heads(kv[0], heads)}, 2);  // [B, heads, N + L, D/heads]
    v = torch::cat({v, split_heads(kv[1], heads)}, 2);
    if (cond_mask) {
      keep = torch::cat({torch::ones({x.size(0), x.size(1)}, cond_mask->options()), *cond_mask}, 1);  // [B, N + L]
    }
  }
  return dense(merge_heads(multi_head_attention(q, k, v, keep)));
}

TransformerBlockImpl::TransformerBlockImpl(const TransformerBlockOptions& o) {
  block1 = register_module("block1", TokenSelfAttention(o));
  block2 = register_module("block2", GatedMLP(o.dim(), o.hidden_dim()));
  dropout = register_module("dropout", torch::nn::Dropout(o.dropout()));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& time, const torch::Tensor& cond,
                                            const std::optional<torch::Tensor>& cond_mask) {
  auto h = x + dropout(block1(x, time, cond, cond_mask));
  return h + dropout(block2(h, time));
}

}  // namespace mdm::nn
