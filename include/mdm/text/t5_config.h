// The shape of a T5 encoder (Hugging Face's T5Config, encoder part) and reading it from a Hugging Face
// config.json. The paper conditions on FLAN-T5-XL's encoder (reference-facts.md §4).
#pragma once

#include <cstdint>
#include <string>

namespace mdm::text {

// Defaults are Hugging Face's T5Config defaults (t5-small), except feed_forward_proj: FLAN-T5 / T5 v1.1's
// gated GELU, the one libmdm's models use (HF's own default is "relu").
struct T5Config {
  int64_t vocab_size = 32128, d_model = 512, d_kv = 64, d_ff = 2048, num_layers = 6, num_heads = 8;
  int64_t relative_attention_num_buckets = 32, relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  std::string feed_forward_proj = "gated-gelu";  // [gated-]ACT, see T5FeedForward
};

// The feed-forward layer feed_forward_proj names, as Hugging Face reads it: "[gated-]ACT" with ACT one of
// relu, gelu_new (the tanh approximation; gelu_pytorch_tanh is the same function); "gated-gelu" means
// gated gelu_new (HF keeps that name for the T5 v1.1 / FLAN-T5 checkpoints).
//   gated: wo(act(wi_0 x) * wi_1 x)      not gated: wo(act(wi x))
enum class T5Activation { kRelu, kGeluTanh };
struct T5FeedForward {
  bool gated = true;
  T5Activation activation = T5Activation::kGeluTanh;
};
// Throws mdm::ConfigError naming the value (and the supported ones) when it is not supported.
T5FeedForward parse_feed_forward_proj(const std::string& value);
// The feed_forward_proj string that names `ff` ("gated-gelu", "gated-relu", "relu", "gelu_new").
std::string feed_forward_proj_name(const T5FeedForward& ff);

// Checks sizes (positive), the bucket parameters (at least 4 buckets, max_distance past the exact
// buckets) and feed_forward_proj. Throws mdm::ConfigError naming `source` and the key.
void validate(const T5Config& config, const std::string& source = "T5Config");

// Reads a Hugging Face config.json (T5 / FLAN-T5 / T5 v1.1 / mT5). Required keys: model_type (t5 or mt5),
// vocab_size, d_model, d_kv, d_ff, num_layers, num_heads; the others take Hugging Face's defaults
// (feed_forward_proj "relu", 32 buckets, max distance 128, eps 1e-6). dense_act_fn and is_gated_act,
// when present, override what feed_forward_proj says, as they do in Hugging Face. Other keys are ignored.
// Unsupported values, wrong types, missing keys or bad JSON → mdm::ConfigError naming the file and key.
T5Config read_t5_config(const std::string& config_json_path);

}  // namespace mdm::text
