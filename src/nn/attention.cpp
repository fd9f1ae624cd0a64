#include <mdm/nn/attention.h>
#include <mdm/nn/group_norm.h>
#include <mdm/nn/init.h>
#include <mdm/util/compat.h>

namespace mdm::nn {

namespace tnn = torch::nn;

torch::Tensor multi_head_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   const std::optional<torch::Tensor>& key_mask) {
  return compat::scaled_dot_product_attention(q, k, v, key_mask);
}

torch::Tensor split_heads(const torch::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, -1}).transpose(1, 2);
}
torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), -1});
}

SpatialAttentionImpl::SpatialAttentionImpl(const SpatialAttentionOptions& o) : options(o) {
  const int64_t c = o.channels();
  // The reference hard-codes 32 groups here (validate.cpp checks the channels).
  norm = register_module("norm", tnn::GroupNorm(tnn::GroupNormOptions(32, c)));
  qkv = register_module("qkv", tnn::Conv2d(tnn::Conv2dOptions(c, 3 * c, 1)));
  if (o.cond_dim() > 0) {
    norm_cond = register_module("norm_cond", tnn::LayerNorm(tnn::LayerNormOptions({o.cond_dim()})));
    kv_cond = register_module("kv_cond", tnn::Linear(o.cond_dim(), 2 * c));
  }
  proj_out = register_module("proj_out", zero_module(tnn::Conv2d(tnn::Conv2dOptions(c, c, 1))));
  if (o.ffn()) {
    ffn = register_module("ffn", tnn::Sequential(tnn::GroupNorm(tnn::GroupNormOptions(32, c)),
                                                 tnn::Conv2d(tnn::Conv2dOptions(c, 4 * c, 1)), tnn::GELU(),
                                                 zero_module(tnn::Conv2d(tnn::Conv2dOptions(4 * c, c, 1)))));
  }
}

torch::Tensor SpatialAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cond,
                                            const std::optional<torch::Tensor>& cond_mask) {
  const int64_t heads = options.num_heads();
  // [B, 3C, H, W] → 3 × [B, HW, C] → [B, heads, HW, D]
  auto qkv_t = qkv(group_norm(norm, x)).flatten(2).transpose(1, 2).chunk(3, 2);
  auto q = split_heads(qkv_t[0], heads);
  auto h = multi_head_attention(q, split_heads(qkv_t[1], heads), split_heads(qkv_t[2], heads), std::nullopt);
  if (options.cond_dim() > 0) {
    TORCH_CHECK(cond.defined(), "SpatialAttention: cross-attention layer called without conditioning tokens");
    auto kv = kv_cond(norm_cond(cond)).chunk(2, 2);  // 2 × [B, L, C]
    h = h + multi_head_attention(q, split_heads(kv[0], heads), split_heads(kv[1], heads), cond_mask);
  }
  h = merge_heads(h).transpose(1, 2).reshape_as(x);  // [B, C, H, W]
  auto out = x + proj_out(h);
  if (ffn) {  // ffn->forward(out), with its GroupNorm run as every other (nn/group_norm.h)
    auto f = group_norm(tnn::GroupNorm(ffn->ptr<tnn::GroupNormImpl>(0)), out);
    f = ffn->ptr<tnn::Conv2dImpl>(1)->forward(f);
    f = ffn->ptr<tnn::GELUImpl>(2)->forward(f);
    out = out + ffn->ptr<tnn::Conv2dImpl>(3)->forward(f);
  }
  return out;
}

TokenAttentionImpl::TokenAttentionImpl(int64_t channels, int64_t heads) : num_heads(heads) {
  norm = register_module("norm", tnn::LayerNorm(tnn::LayerNormOptions({channels})));
  qkv = register_module("qkv", tnn::Linear(channels, 3 * channels));
  proj_out = register_module("proj_out", zero_module(tnn::Linear(channels, channels)));
}

torch::Tensor TokenAttentionImpl::forward(const torch::Tensor& x, const std::optional<torch::Tensor>& mask) {
  auto parts = qkv(norm(x)).chunk(3, -1);  // 3 × [B, L, C]
  auto h = multi_head_attention(split_heads(parts[0], num_heads), split_heads(parts[1], num_heads),
                                split_heads(parts[2], num_heads), mask);
  return x + proj_out(merge_heads(h));
}

TokenMLPImpl::TokenMLPImpl(int64_t channels, int64_t multiplier) {
  main = register_module("main", tnn::Sequential(tnn::LayerNorm(tnn::LayerNormOptions({channels})),
                                                 tnn::Linear(channels, multiplier * channels), tnn::GELU(),
                                                 zero_module(tnn::Linear(multiplier * channels, channels))));
}

torch::Tensor TokenMLPImpl::forward(const torch::Tensor& x) { return x + main->forward(x); }

LMAttentionBlockImpl::LMAttentionBlockImpl(int64_t channels, int64_t heads) {
  attn = register_module("attn", TokenAttention(channels, heads));
  mlp = register_module("mlp", TokenMLP(channels));
}

torch::Tensor LMAttentionBlockImpl::forward(const torch::Tensor& x, const std::optional<torch::Tensor>& mask) {
  return mlp(attn(x, mask));
}

}  // namespace mdm::nn
