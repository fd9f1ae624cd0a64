#include <mdm/text/text_encoder.h>
#include <mdm/util/device_copy.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

namespace mdm::text {

TextEncoder::TextEncoder(std::shared_ptr<const Tokenizer> tokenizer, T5Encoder t5, int64_t max_tokens, bool trainable)
    : tokenizer_(std::move(tokenizer)), t5_(std::move(t5)), max_tokens_(max_tokens), trainable_(trainable) {
  if (!tokenizer_) throw Error("TextEncoder: no tokenizer");
  if (!t5_) throw Error("TextEncoder: no T5 encoder");
  if (tokenizer_->vocab_size() > t5_->config().vocab_size) {
    throw ConfigError(fmt::format("the tokenizer {} has {} pieces, more than the T5 encoder's vocab_size {}",
                                  tokenizer_->path(), tokenizer_->vocab_size(), t5_->config().vocab_size));
  }
}

EncodedText TextEncoder::encode(const std::vector<std::string>& prompts, Overflow overflow, torch::Device device) const {
  const TokenBatch tokens = tokenizer_->encode_batch(prompts, max_tokens_, overflow);
  // The ids stay on the host: the T5 encoder checks them there and copies them without a device sync.
  const auto& ids = tokens.ids;
  auto mask = util::to_device_async(tokens.mask, device);
  const bool with_grad = trainable_ && t5_->is_training() && torch::GradMode::is_enabled();
  torch::Tensor features;
  {
    torch::AutoGradMode mode(with_grad);
    features = t5_->forward(ids, mask).to(torch::kFloat) * mask.unsqueeze(-1);
  }
  return {features, mask};
}

T5Config t5_config_from(const T5Sizes& s, int64_t vocab_size) {
  T5Config c;
  c.vocab_size = vocab_size;
  c.d_model = s.d_model;
  c.d_kv = s.d_kv;
  c.d_ff = s.d_ff;
  c.num_layers = s.num_layers;
  c.num_heads = s.num_heads;
  c.relative_attention_num_buckets = s.relative_attention_num_buckets;
  c.relative_attention_max_distance = s.relative_attention_max_distance;
  c.layer_norm_epsilon = s.layer_norm_epsilon;
  c.feed_forward_proj = s.feed_forward_proj;
  return c;
}

std::string tokenizer_path(const TextConfig& text) {
  if (!text.tokenizer.empty()) return text.tokenizer;
  if (!text.weights.empty()) return (std::filesystem::path(text.weights) / "spiece.model").string();
  return "";
}

namespace {

void check_width(const Config& config, int64_t d_model, const std::string& what) {
  if (d_model != config.model.text_feature_dim) {
    throw ConfigError(fmt::format("{}: model.text_feature_dim is {}, but the text encoder {} outputs {} features",
                                  config.source.empty() ? "config" : config.source, config.model.text_feature_dim,
                                  what, d_model));
  }
}

std::shared_ptr<T5EncoderImpl> attached(Denoiser& model) {
  for (const auto& child : model.named_children()) {
    if (child.key() == kTextEncoderModule) return std::dynamic_pointer_cast<T5EncoderImpl>(child.value());
  }
  return nullptr;
}

}  // namespace

void attach_trainable_encoder(Denoiser& model, const Config& config, const Tokenizer& tokenizer) {
  if (config.model.conditioning != ConditioningKind::Text || !config.text.trainable) return;
  if (attached(model)) return;
  T5Encoder t5{nullptr};
  if (config.text.weights.empty()) {
    t5 = T5Encoder(t5_config_from(config.text.t5, tokenizer.vocab_size()));
  } else {
    T5LoadOptions o;
    o.frozen = false;
    t5 = load_t5_encoder(config.text.weights, o);
    // Fine-tuned weights must own their memory: the optimizer writes them in place.
    torch::NoGradGuard no_grad;
    for (auto& p : t5->parameters()) p.set_data(p.detach().clone());
  }
  check_width(config, t5->config().d_model, config.text.weights.empty() ? "(text.t5)" : config.text.weights);
  model.register_module(kTextEncoderModule, t5);
}

std::shared_ptr<TextEncoder> make_text_encoder(const Config& config, Denoiser& model,
                                               std::shared_ptr<const Tokenizer> tokenizer, torch::Device device) {
  const auto& text = config.text;
  if (config.model.conditioning != ConditioningKind::Text) return nullptr;
  if (text.trainable) {
    auto t5 = attached(model);
    if (!t5) {
      throw Error(fmt::format("text.trainable: the model has no '{}' module (attach_trainable_encoder first)",
                              kTextEncoderModule));
    }
    return std::make_shared<TextEncoder>(std::move(tokenizer), T5Encoder(t5), text.max_tokens, true);
  }
  if (text.weights.empty()) {
    throw ConfigError(fmt::format(
        "{}: text.weights is empty: a text-conditioned model needs a pretrained T5 folder (config.json, "
        "model.safetensors, spiece.model), or text.trainable: true to train a T5 of the text.t5 sizes with it",
        config.source.empty() ? "config" : config.source));
  }
  T5LoadOptions o;
  o.dtype = text.precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  o.device = device;
  o.frozen = true;
  auto t5 = load_t5_encoder(text.weights, o);
  check_width(config, t5->config().d_model, text.weights);
  return std::make_shared<TextEncoder>(std::move(tokenizer), t5, text.max_tokens, false);
}

}  // namespace mdm::text
