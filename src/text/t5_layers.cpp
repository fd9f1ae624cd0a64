#include <mdm/text/t5_layers.h>
#include <mdm/util/error.h>

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace mdm::text {
namespace {

double lowest_value(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat:
      return std::numeric_limits<float>::lowest();
    case torch::kDouble:
      return std::numeric_limits<double>::lowest();
    case torch::kHalf:
      return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    case torch::kBFloat16:
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    default:
      throw Error(fmt::format("T5: parameters of dtype {} are not floating point", c10::toString(dtype)));
  }
}

// Allocated, not written (see t5_layers.h).
torch::Tensor uninitialized(std::vector<int64_t> shape) { return torch::empty(shape); }

}  // namespace

torch::Tensor relative_position_bucket(const torch::Tensor& relative_position, int64_t num_buckets,
                                       int64_t max_distance) {
  const int64_t half = num_buckets / 2;
  const int64_t max_exact = half / 2;
  auto buckets = (relative_position > 0).to(torch::kLong) * half;
  auto distance = relative_position.abs();
  // Every step in float32 with the same scalars as Hugging Face: the truncation at exact bucket edges
  // (e.g. |n| = 16 with 32 buckets and max distance 128) then lands on the same side.
  auto large = (torch::log(distance.to(torch::kFloat) / max_exact) /
                std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) * (half - max_exact))
                   .to(torch::kLong) +
               max_exact;
  large = torch::clamp_max(large, half - 1);
  return buckets + torch::where(distance < max_exact, distance, large);
}

torch::Tensor relative_position_buckets(int64_t length, int64_t num_buckets, int64_t max_distance,
                                        const torch::Device& device) {
  auto position = torch::arange(length, torch::TensorOptions().dtype(torch::kLong).device(device));
  auto relative = position.unsqueeze(0) - position.unsqueeze(1);  // [query, key] = key − query
  return relative_position_bucket(relative, num_buckets, max_distance);
}

torch::Tensor attention_mask_bias(const torch::Tensor& mask, torch::ScalarType dtype) {
  auto m = mask.to(dtype).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, L]
  return (1.0 - m) * lowest_value(dtype);
}

T5LinearImpl::T5LinearImpl(int64_t in_features, int64_t out_features) {
  weight = register_parameter("weight", uninitialized({out_features, in_features}));
}
torch::Tensor T5LinearImpl::forward(const torch::Tensor& x) { return torch::linear(x, weight); }
void T5LinearImpl::reset_parameters(double std) {
  torch::NoGradGuard no_grad;
  weight.normal_(0.0, std);
}

T5EmbeddingImpl::T5EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim) {
  weight = register_parameter("weight", uninitialized({num_embeddings, embedding_dim}));
}
torch::Tensor T5EmbeddingImpl::forward(const torch::Tensor& indices) { return torch::embedding(weight, indices); }
void T5EmbeddingImpl::reset_parameters(double std) {
  torch::NoGradGuard no_grad;
  weight.normal_(0.0, std);
}

T5LayerNormImpl::T5LayerNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", uninitialized({dim}));
}
torch::Tensor T5LayerNormImpl::forward(const torch::Tensor& x) {
  auto variance = x.to(torch::kFloat).pow(2).mean(-1, /*keepdim=*/true);
  auto y = x * torch::rsqrt(variance + eps);
  const auto type = weight.scalar_type();
  if (type == torch::kHalf || type == torch::kBFloat16) y = y.to(type);
  return weight * y;
}
void T5LayerNormImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  weight.fill_(1.0);
}

T5AttentionImpl::T5AttentionImpl(const T5Config& c, bool has_relative_attention_bias) : config(c) {
  const int64_t inner = c.d_kv * c.num_heads;
  q = register_module("q", T5Linear(c.d_model, inner));
  k = register_module("k", T5Linear(c.d_model, inner));
  v = register_module("v", T5Linear(c.d_model, inner));
  o = register_module("o", T5Linear(inner, c.d_model));
  if (has_relative_attention_bias) {
    relative_attention_bias =
        register_module("relative_attention_bias", T5Embedding(c.relative_attention_num_buckets, c.num_heads));
  }
}

torch::Tensor T5AttentionImpl::compute_bias(int64_t length) {
  TORCH_CHECK(!relative_attention_bias.is_empty(), "T5Attention: only block 0 holds the relative attention bias");
  auto buckets =
      relative_position_buckets(length, config.relative_attention_num_buckets, config.relative_attention_max_distance,
                                relative_attention_bias->weight.device());
  return relative_attention_bias(buckets).permute({2, 0, 1}).unsqueeze(0);  // [L, L, H] → [1, H, L, L]
}

torch::Tensor T5AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& position_bias) {
  const int64_t batch = x.size(0), heads = config.num_heads, d_kv = config.d_kv;
  auto split = [&](const torch::Tensor& t) { return t.view({batch, -1, heads, d_kv}).transpose(1, 2); };
  auto query = split(q(x)), key = split(k(x)), value = split(v(x));  // [B, H, L, d_kv]
  auto scores = torch::matmul(query, key.transpose(3, 2));           // [B, H, L, L], no 1/sqrt(d_kv)
  scores += position_bias;
  auto weights = torch::softmax(scores.to(torch::kFloat), -1).to(scores.scalar_type());
  auto out = torch::matmul(weights, value).transpose(1, 2).contiguous().view({batch, -1, heads * d_kv});
  return o(out);
}

void T5AttentionImpl::reset_parameters() {
  // Hugging Face's T5PreTrainedModel._init_weights (initializer_factor 1).
  const double d_model = static_cast<double>(config.d_model), d_kv = static_cast<double>(config.d_kv);
  q->reset_parameters(1.0 / std::sqrt(d_model * d_kv));
  k->reset_parameters(1.0 / std::sqrt(d_model));
  v->reset_parameters(1.0 / std::sqrt(d_model));
  o->reset_parameters(1.0 / std::sqrt(static_cast<double>(config.num_heads) * d_kv));
  if (!relative_attention_bias.is_empty()) relative_attention_bias->reset_parameters(1.0 / std::sqrt(d_model));
}

T5DenseReluDenseImpl::T5DenseReluDenseImpl(const T5Config& c)
    : config(c), kind(parse_feed_forward_proj(c.feed_forward_proj)) {
  if (kind.gated) {
    wi_0 = register_module("wi_0", T5Linear(c.d_model, c.d_ff));
    wi_1 = register_module("wi_1", T5Linear(c.d_model, c.d_ff));
  } else {
    wi = register_module("wi", T5Linear(c.d_model, c.d_ff));
  }
  wo = register_module("wo", T5Linear(c.d_ff, c.d_model));
}

torch::Tensor T5DenseReluDenseImpl::forward(const torch::Tensor& x) {
  auto act = [&](const torch::Tensor& t) {
    return kind.activation == T5Activation::kRelu ? torch::relu(t) : torch::gelu(t, "tanh");
  };
  auto h = kind.gated ? act(wi_0(x)) * wi_1(x) : act(wi(x));  // [B, L, d_ff]
  return wo(h);
}

void T5DenseReluDenseImpl::reset_parameters() {
  const double in_std = 1.0 / std::sqrt(static_cast<double>(config.d_model));
  if (kind.gated) {
    wi_0->reset_parameters(in_std);
    wi_1->reset_parameters(in_std);
  } else {
    wi->reset_parameters(in_std);
  }
  wo->reset_parameters(1.0 / std::sqrt(static_cast<double>(config.d_ff)));
}

T5LayerSelfAttentionImpl::T5LayerSelfAttentionImpl(const T5Config& c, bool has_relative_attention_bias) {
  SelfAttention = register_module("SelfAttention", T5Attention(c, has_relative_attention_bias));
  layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
}
torch::Tensor T5LayerSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& position_bias) {
  return x + SelfAttention(layer_norm(x), position_bias);
}

T5LayerFFImpl::T5LayerFFImpl(const T5Config& c) {
  DenseReluDense = register_module("DenseReluDense", T5DenseReluDense(c));
  layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
}
torch::Tensor T5LayerFFImpl::forward(const torch::Tensor& x) { return x + DenseReluDense(layer_norm(x)); }

T5BlockImpl::T5BlockImpl(const T5Config& c, bool has_relative_attention_bias) {
  self_attention = T5LayerSelfAttention(c, has_relative_attention_bias);
  feed_forward = T5LayerFF(c);
  register_module("layer", torch::nn::ModuleList(self_attention, feed_forward));
}
torch::Tensor T5BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& position_bias) {
  return feed_forward(self_attention(x, position_bias));
}

T5StackImpl::T5StackImpl(const T5Config& c) {
  torch::nn::ModuleList list;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    blocks.emplace_back(c, /*has_relative_attention_bias=*/i == 0);
    list->push_back(blocks.back());
  }
  register_module("block", list);
  final_layer_norm = register_module("final_layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
}

torch::Tensor T5StackImpl::forward(const torch::Tensor& embeddings, const torch::Tensor& mask) {
  auto attention = blocks.front()->self_attention->SelfAttention;
  // [1, H, L, L] + [B, 1, 1, L] → [B, H, L, L], in the parameters' dtype as Hugging Face adds them.
  auto position_bias =
      attention->compute_bias(embeddings.size(1)) + attention_mask_bias(mask, embeddings.scalar_type());
  auto x = embeddings;
  for (auto& block : blocks) x = block(x, position_bias);
  return final_layer_norm(x);
}

void T5StackImpl::reset_parameters() {
  for (auto& block : blocks) {
    block->self_attention->SelfAttention->reset_parameters();
    block->self_attention->layer_norm->reset_parameters();
    block->feed_forward->DenseReluDense->reset_parameters();
    block->feed_forward->layer_norm->reset_parameters();
  }
  final_layer_norm->reset_parameters();
}

}  // namespace mdm::text
