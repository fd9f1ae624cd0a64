// The layers of a T5 encoder, numerically as Hugging Face's modeling_t5.py (its eval mode: no dropout), with
// its state-dict names: relative position buckets, RMSNorm, self-attention without 1/sqrt(d) scaling and
// with a relative position bias, the (gated) feed-forward layer, pre-norm residual blocks, the stack.
//
// Parameters are allocated, not written: a new module starts from reset_parameters() (Hugging Face's T5
// initialisation) or from a loader that sets every parameter (load_t5_encoder), so that a 1.2B-parameter
// encoder is not initialised only to be overwritten.
#pragma once

#include <mdm/text/t5_config.h>
#include <torch/torch.h>

#include <vector>

namespace mdm::text {

// The bidirectional relative position bucket of Mesh TensorFlow / Hugging Face T5 for relative_position =
// key position - query position (int64, any shape): half of the buckets for each sign (positive distances
// get +num_buckets/2); within a half, distances below max_exact = num_buckets/4 have a bucket each, larger
// ones share logarithmically wider buckets up to max_distance; everything beyond lands in the last one:
//   bucket(|n| ≥ max_exact) = min(max_exact + ⌊log(|n|/max_exact) / log(max_distance/max_exact)
//                                               · (num_buckets/2 − max_exact)⌋, num_buckets/2 − 1)
// computed in float32 as Hugging Face does, so that the buckets at the boundaries agree.
torch::Tensor relative_position_bucket(const torch::Tensor& relative_position, int64_t num_buckets,
                                       int64_t max_distance);
// The bucket of every (query, key) pair of a sequence of `length` tokens: int64 [length, length].
torch::Tensor relative_position_buckets(int64_t length, int64_t num_buckets, int64_t max_distance,
                                        const torch::Device& device = torch::kCPU);

// The additive attention mask of Hugging Face's T5 stack: (1 − mask) · (the lowest value of `dtype`), so
// that pads get a finite, huge negative score (a row of pads only stays finite). mask [B, L] → [B, 1, 1, L].
torch::Tensor attention_mask_bias(const torch::Tensor& mask, torch::ScalarType dtype);

// nn.Linear(in, out, bias=False): y = x Wᵀ, parameter `weight` [out, in].
class T5LinearImpl : public torch::nn::Module {
 public:
  T5LinearImpl(int64_t in_features, int64_t out_features);
  torch::Tensor forward(const torch::Tensor& x);
  void reset_parameters(double std);  // N(0, std²), as Hugging Face's T5 initialisation

  torch::Tensor weight;
};
TORCH_MODULE(T5Linear);

// nn.Embedding(num, dim): parameter `weight` [num, dim].
class T5EmbeddingImpl : public torch::nn::Module {
 public:
  T5EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim);
  torch::Tensor forward(const torch::Tensor& indices);
  void reset_parameters(double std);

  torch::Tensor weight;
};
TORCH_MODULE(T5Embedding);

// T5's layer norm, an RMSNorm: weight · x / sqrt(mean(x²) + eps), no mean subtraction, no bias; the mean
// square in float32 whatever the input dtype, the result cast to the weight's dtype when that is 16-bit.
class T5LayerNormImpl : public torch::nn::Module {
 public:
  T5LayerNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  void reset_parameters();  // weight = 1

  double eps;
  torch::Tensor weight;
};
TORCH_MODULE(T5LayerNorm);

// Multi-head self-attention, keys q, k, v, o (inner dim d_kv·num_heads, which may differ from d_model) and,
// in block 0 only, relative_attention_bias (num_buckets × heads). Scores are q·kᵀ + position bias, NOT
// divided by sqrt(d_kv) (T5 folds that into its initialisation); softmax in float32.
class T5AttentionImpl : public torch::nn::Module {
 public:
  T5AttentionImpl(const T5Config& config, bool has_relative_attention_bias);
  // x [B, L, d_model], position_bias [B or 1, heads, L, L] (mask included) → [B, L, d_model]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& position_bias);
  // The learned bias of every (query, key) pair: [1, heads, L, L] in the parameters' dtype.
  torch::Tensor compute_bias(int64_t length);
  void reset_parameters();

  T5Config config;
  T5Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  T5Embedding relative_attention_bias{nullptr};
};
TORCH_MODULE(T5Attention);

// The feed-forward layer (Hugging Face's DenseReluDense): gated wo(act(wi_0 x) ⊙ wi_1 x), or wo(act(wi x)).
class T5DenseReluDenseImpl : public torch::nn::Module {
 public:
  explicit T5DenseReluDenseImpl(const T5Config& config);
  torch::Tensor forward(const torch::Tensor& x);
  void reset_parameters();

  T5Config config;
  T5FeedForward kind;
  T5Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
};
TORCH_MODULE(T5DenseReluDense);

// x + SelfAttention(layer_norm(x)).
class T5LayerSelfAttentionImpl : public torch::nn::Module {
 public:
  T5LayerSelfAttentionImpl(const T5Config& config, bool has_relative_attention_bias);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& position_bias);

  T5Attention SelfAttention{nullptr};  // NOLINT(readability-identifier-naming): Hugging Face's key
  T5LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerSelfAttention);

// x + DenseReluDense(layer_norm(x)).
class T5LayerFFImpl : public torch::nn::Module {
 public:
  explicit T5LayerFFImpl(const T5Config& config);
  torch::Tensor forward(const torch::Tensor& x);

  T5DenseReluDense DenseReluDense{nullptr};  // NOLINT(readability-identifier-naming): Hugging Face's key
  T5LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerFF);

// One encoder block: keys layer.0.* (self-attention), layer.1.* (feed-forward).
class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const T5Config& config, bool has_relative_attention_bias);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& position_bias);

  T5LayerSelfAttention self_attention{nullptr};
  T5LayerFF feed_forward{nullptr};
};
TORCH_MODULE(T5Block);

// The encoder stack after the embedding (keys block.N.*, final_layer_norm.weight): block 0's relative
// position bias, plus the mask, is computed once and reused by every block, as in Hugging Face.
class T5StackImpl : public torch::nn::Module {
 public:
  explicit T5StackImpl(const T5Config& config);
  // embeddings [B, L, d_model], mask [B, L] → final_layer_norm(blocks(x)) [B, L, d_model]
  torch::Tensor forward(const torch::Tensor& embeddings, const torch::Tensor& mask);
  void reset_parameters();

  std::vector<T5Block> blocks;
  T5LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(T5Stack);

}  // namespace mdm::text
