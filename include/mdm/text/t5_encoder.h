// A native T5 encoder (Hugging Face's T5EncoderModel, numerically): the paper's frozen FLAN-T5-XL text
// encoder (reference-facts.md §4, formulas.md "Text conditioning") without Python. Loads Hugging Face
// folders (config.json + safetensors) memory-mapped: parameters are views over the file when dtype and
// device allow, so a 1.2B-parameter encoder costs no second copy.
#pragma once

#include <mdm/text/t5_config.h>
#include <mdm/text/t5_layers.h>
#include <torch/torch.h>

#include <string>

namespace mdm::text {

// What a new encoder's parameters hold: Hugging Face's T5 initialisation, or nothing yet (allocated, not
// written; for loaders that set every parameter, as load_t5_encoder does).
enum class T5Init { kRandom, kUninitialized };

// Parameter names equal Hugging Face's state-dict keys: shared.weight,
// encoder.block.N.layer.0.{SelfAttention.{q,k,v,o},layer_norm}.weight,
// encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight,
// encoder.block.N.layer.1.DenseReluDense.{wi_0,wi_1 | wi,wo}.weight, encoder.block.N.layer.1.layer_norm.weight,
// encoder.final_layer_norm.weight. (encoder.embed_tokens is Hugging Face's alias of shared.)
class T5EncoderImpl : public torch::nn::Module {
 public:
  explicit T5EncoderImpl(const T5Config& config);  // Hugging Face's initialisation
  T5EncoderImpl(const T5Config& config, T5Init init);
  // ids int64 [B, L], mask [B, L] (1 token, 0 pad; any dtype) → last_hidden_state [B, L, d_model] (after the
  // final norm; NOT zeroed at pads — the caller does that), in the parameters' dtype. Inputs move to the
  // parameters' device. Throws mdm::Error on a shape mismatch or an id outside the vocabulary.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask);
  const T5Config& config() const { return config_; }
  void reset_parameters();  // Hugging Face's T5 initialisation (initializer_factor 1)

  T5Embedding shared{nullptr};
  T5Stack encoder{nullptr};

 private:
  T5Config config_;
};
TORCH_MODULE(T5Encoder);

struct T5LoadOptions {
  torch::Dtype dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  bool frozen = true;  // requires_grad false, eval mode
};

// Loads a Hugging Face T5 folder: config.json + model.safetensors, or model.safetensors.index.json + its
// shards (only the shards that hold encoder tensors are opened). Encoder weights only (decoder.* /
// lm_head.* are skipped unread). The embedding comes from `shared.weight` or `encoder.embed_tokens.weight`
// (tied; either may be the one saved). A tensor stored in `dtype` on the CPU becomes a parameter over the
// file's mapping (no copy; the mapping lives as long as a tensor uses it); others are converted one at a
// time. config.json errors → mdm::ConfigError; missing files, shards or tensors, mis-shaped tensors →
// mdm::CheckpointError naming the file and tensor.
T5Encoder load_t5_encoder(const std::string& folder, const T5LoadOptions& options = {});

}  // namespace mdm::text
