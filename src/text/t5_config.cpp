#include <mdm/text/t5_config.h>
#include <mdm/util/error.h>

#include "json_file.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace mdm::text {
namespace {

using json = nlohmann::json;

constexpr const char* kSupported = "relu, gated-relu, gelu_new, gated-gelu, gated-gelu_new";

// An activation name of Hugging Face's ACT2FN that libmdm implements; false when it is not one.
bool parse_activation(const std::string& name, T5Activation* out) {
  if (name == "relu") {
    *out = T5Activation::kRelu;
  } else if (name == "gelu_new" || name == "gelu_pytorch_tanh") {
    *out = T5Activation::kGeluTanh;
  } else {
    return false;
  }
  return true;
}

// A key of the config file with its type checked; every message names the file and the key.
class ConfigJson {
 public:
  ConfigJson(std::string path, json root) : path_(std::move(path)), root_(std::move(root)) {}

  bool has(const char* key) const { return root_.contains(key) && !root_[key].is_null(); }

  [[noreturn]] void fail(const char* key, const std::string& what) const {
    throw ConfigError(fmt::format("{}: key '{}' {}", path_, key, what));
  }

  int64_t positive_int(const char* key) const {
    if (!has(key)) fail(key, "is missing (a T5 config.json has it)");
    const json& v = root_[key];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0)
      fail(key, fmt::format("= {} is not a positive integer", v.dump()));
    return v.get<int64_t>();
  }
  int64_t positive_int(const char* key, int64_t fallback) const { return has(key) ? positive_int(key) : fallback; }

  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = root_[key];
    if (!v.is_number()) fail(key, fmt::format("= {} is not a number", v.dump()));
    return v.get<double>();
  }

  std::string string(const char* key) const {
    const json& v = root_[key];
    if (!v.is_string()) fail(key, fmt::format("= {} is not a string", v.dump()));
    return v.get<std::string>();
  }

  bool boolean(const char* key) const {
    const json& v = root_[key];
    if (!v.is_boolean()) fail(key, fmt::format("= {} is not true or false", v.dump()));
    return v.get<bool>();
  }

 private:
  std::string path_;
  json root_;
};

}  // namespace

T5FeedForward parse_feed_forward_proj(const std::string& value) {
  T5FeedForward ff;
  const std::string prefix = "gated-";
  ff.gated = value.rfind(prefix, 0) == 0;
  const std::string act = ff.gated ? value.substr(prefix.size()) : value;
  // Hugging Face reads "gated-gelu" as gated gelu_new (its T5 v1.1 checkpoints were saved with that name).
  if (ff.gated && act == "gelu") {
    ff.activation = T5Activation::kGeluTanh;
  } else if (!parse_activation(act, &ff.activation)) {
    throw ConfigError(
        fmt::format("feed_forward_proj '{}' is not supported (libmdm's T5 supports {})", value, kSupported));
  }
  return ff;
}

std::string feed_forward_proj_name(const T5FeedForward& ff) {
  if (ff.activation == T5Activation::kRelu) return ff.gated ? "gated-relu" : "relu";
  return ff.gated ? "gated-gelu" : "gelu_new";
}

void validate(const T5Config& c, const std::string& source) {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) throw ConfigError(fmt::format("{}: {} = {} must be positive", source, key, v));
  };
  positive("vocab_size", c.vocab_size);
  positive("d_model", c.d_model);
  positive("d_kv", c.d_kv);
  positive("d_ff", c.d_ff);
  positive("num_layers", c.num_layers);
  positive("num_heads", c.num_heads);
  // Bidirectional buckets: half per direction, half of those exact; the rest need max_exact ≥ 1 and a
  // positive log(max_distance / max_exact).
  const int64_t max_exact = c.relative_attention_num_buckets / 4;
  if (max_exact < 1) {
    throw ConfigError(fmt::format("{}: relative_attention_num_buckets = {} must be at least 4", source,
                                  c.relative_attention_num_buckets));
  }
  if (c.relative_attention_max_distance <= max_exact) {
    throw ConfigError(fmt::format("{}: relative_attention_max_distance = {} must exceed the {} exact buckets", source,
                                  c.relative_attention_max_distance, max_exact));
  }
  if (!(c.layer_norm_epsilon >= 0.0)) {
    throw ConfigError(fmt::format("{}: layer_norm_epsilon = {} must be ≥ 0", source, c.layer_norm_epsilon));
  }
  try {
    parse_feed_forward_proj(c.feed_forward_proj);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", source, e.what()));
  }
}

T5Config read_t5_config(const std::string& path) {
  const ConfigJson j(path, detail::read_json_object<ConfigError>(path, "the T5 config"));

  if (!j.has("model_type")) j.fail("model_type", "is missing (a Hugging Face config.json has it)");
  const std::string model_type = j.string("model_type");
  if (model_type != "t5" && model_type != "mt5") {
    j.fail("model_type", fmt::format("= '{}' is not a T5 model (t5 or mt5)", model_type));
  }
  T5Config c;
  c.vocab_size = j.positive_int("vocab_size");
  c.d_model = j.positive_int("d_model");
  c.d_kv = j.positive_int("d_kv");
  c.d_ff = j.positive_int("d_ff");
  c.num_layers = j.positive_int("num_layers");
  c.num_heads = j.positive_int("num_heads");
  c.relative_attention_num_buckets = j.positive_int("relative_attention_num_buckets", 32);
  c.relative_attention_max_distance = j.positive_int("relative_attention_max_distance", 128);
  c.layer_norm_epsilon = j.number("layer_norm_epsilon", 1e-6);

  // Hugging Face derives (is_gated_act, dense_act_fn) from feed_forward_proj, then lets the saved
  // attributes of the same names override them.
  T5FeedForward ff{false, T5Activation::kRelu};  // HF's default feed_forward_proj: "relu"
  if (j.has("feed_forward_proj")) {
    try {
      ff = parse_feed_forward_proj(j.string("feed_forward_proj"));
    } catch (const ConfigError&) {
      j.fail("feed_forward_proj", fmt::format("= '{}' is not supported (libmdm's T5 supports {})",
                                              j.string("feed_forward_proj"), kSupported));
    }
  }
  if (j.has("dense_act_fn") && !parse_activation(j.string("dense_act_fn"), &ff.activation)) {
    j.fail("dense_act_fn",
           fmt::format("= '{}' is not supported (libmdm's T5 supports relu, gelu_new)", j.string("dense_act_fn")));
  }
  if (j.has("is_gated_act")) ff.gated = j.boolean("is_gated_act");
  c.feed_forward_proj = feed_forward_proj_name(ff);

  validate(c, path);
  return c;
}

}  // namespace mdm::text
