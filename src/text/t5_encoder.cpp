#include <mdm/text/t5_encoder.h>
#include <mdm/util/device_copy.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace mdm::text {

T5EncoderImpl::T5EncoderImpl(const T5Config& config) : T5EncoderImpl(config, T5Init::kRandom) {}

T5EncoderImpl::T5EncoderImpl(const T5Config& config, T5Init init) : config_(config) {
  validate(config_);
  shared = register_module("shared", T5Embedding(config_.vocab_size, config_.d_model));
  encoder = register_module("encoder", T5Stack(config_));
  if (init == T5Init::kRandom) reset_parameters();
}

void T5EncoderImpl::reset_parameters() {
  shared->reset_parameters(1.0);
  encoder->reset_parameters();
}

torch::Tensor T5EncoderImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask) {
  if (ids.dim() != 2 || ids.scalar_type() != torch::kLong) {
    throw Error(
        fmt::format("T5Encoder: ids must be int64 [B, L], got {} {}", c10::toString(ids.scalar_type()), ids.sizes()));
  }
  if (mask.sizes() != ids.sizes()) {
    throw Error(fmt::format("T5Encoder: mask {} does not match ids {}", mask.sizes(), ids.sizes()));
  }
  const auto device = shared->weight.device();
  // Checked where the ids are: ids from the tokenizer are on the host, where reading the result costs no
  // device sync (ids on the device cost one). The offending id is looked up only when there is one.
  const auto outside = (ids < 0) | (ids >= config_.vocab_size);
  if (outside.any().item<bool>()) {
    throw Error(fmt::format("T5Encoder: token id {} is outside the vocabulary [0, {})",
                            ids.masked_select(outside)[0].item<int64_t>(), config_.vocab_size));
  }
  auto tokens = util::to_device_async(ids, device);
  return encoder(shared(tokens), util::to_device_async(mask, device));  // [B, L, d_model]
}

}  // namespace mdm::text
