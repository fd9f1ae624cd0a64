// Prompts → the text features a denoiser is conditioned on (MDM §4, reference-facts.md §4): tokenize
// (eos appended, padded to the longest prompt), run the T5 encoder, zero the features at pads. The encoder is
// either a pretrained Hugging Face T5 (frozen, or fine-tuned) or a T5 of config sizes trained from scratch
// with the model; a trained encoder is a submodule of the denoiser ("text_encoder.*" in its checkpoints), so
// the optimizer, the EMA and checkpoints cover it without further code.
#pragma once

#include <mdm/config/config.h>
#include <mdm/models/denoiser.h>
#include <mdm/text/t5_encoder.h>
#include <mdm/text/tokenizer.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace mdm::text {

// The name of a trained encoder inside the denoiser (and the prefix of its tensors in checkpoints).
inline constexpr const char* kTextEncoderModule = "text_encoder";

struct EncodedText {
  torch::Tensor features;  // [B, L, D] float32, zero at pads
  torch::Tensor mask;      // [B, L] float32: 1 at tokens (eos included), 0 at pads
};

class TextEncoder {
 public:
  TextEncoder(std::shared_ptr<const Tokenizer> tokenizer, T5Encoder t5, int64_t max_tokens, bool trainable);

  // Encodes the prompts on `device`. With a trainable encoder in training mode the result carries gradients;
  // otherwise it is computed without autograd. `overflow` decides what a prompt over max_tokens does.
  EncodedText encode(const std::vector<std::string>& prompts, Overflow overflow, torch::Device device) const;

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  std::shared_ptr<const Tokenizer> tokenizer_ptr() const { return tokenizer_; }
  T5Encoder t5() const { return t5_; }
  int64_t max_tokens() const { return max_tokens_; }
  bool trainable() const { return trainable_; }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  mutable T5Encoder t5_;  // forward is not const; encode is
  int64_t max_tokens_;
  bool trainable_;
};

// The T5 sizes of a from-scratch encoder (config text.t5) with the tokenizer's vocabulary.
T5Config t5_config_from(const T5Sizes& sizes, int64_t vocab_size);

// The tokenizer file a config names: text.tokenizer, else text.weights/spiece.model. "" when neither is set.
std::string tokenizer_path(const TextConfig& text);

// Registers the trainable encoder of a text-conditioned config in `model` as kTextEncoderModule: a T5 of the
// text.t5 sizes (fresh) when text.weights is empty, else the pretrained folder's weights, to be fine-tuned.
// Does nothing for a frozen encoder or a model without text conditioning. The tokenizer gives the vocabulary.
void attach_trainable_encoder(Denoiser& model, const Config& config, const Tokenizer& tokenizer);

// The encoder of a text-conditioned config, sharing a trainable T5 with `model` (attach_trainable_encoder must
// have run), or loading the frozen pretrained one from text.weights (its width must equal
// model.text_feature_dim). Throws ConfigError / CheckpointError naming the file or key at fault.
std::shared_ptr<TextEncoder> make_text_encoder(const Config& config, Denoiser& model,
                                               std::shared_ptr<const Tokenizer> tokenizer, torch::Device device);

}  // namespace mdm::text
