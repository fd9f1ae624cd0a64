// Progressive training (MDM §3.3): a stage trains the lowest `levels` resolutions; the nested model's inner
// models are the stand-alone models of those levels. Starting a stage from a lower-resolution checkpoint
// copies its weights into the inner model by name, as the reference maps unprefixed keys onto inner_unet.*,
// but a shape mismatch stops (the reference prints and carries on with random weights).
#pragma once

#include <mdm/config/config.h>
#include <mdm/models/denoiser.h>
#include <mdm/models/state_dict.h>

#include <memory>
#include <string>
#include <vector>

namespace mdm::train {

// The model of the lowest `levels` levels inside `model`: the model itself when it has that many levels,
// else its inner_unet, recursively. Throws mdm::Error when no inner model has that many levels.
std::shared_ptr<Denoiser> inner_model(const std::shared_ptr<Denoiser>& model, size_t levels);
// Its state-dict prefix inside `model` ("", "inner_unet.", "inner_unet.inner_unet.", …).
std::string inner_prefix(const ModelConfig& model, size_t levels);
// The config of that inner model: its UNet level as the outermost one (arch unet for a single level).
ModelConfig inner_model_config(const ModelConfig& model, size_t levels);

struct InitReport {
  std::string checkpoint;  // the weights file read
  std::string prefix;      // where its keys went ("inner_unet.")
  LoadReport load;  // the inner model's tensors (named without the prefix); unexpected names include the encoder's
  // A text encoder trained with the denoiser (the model's "text_encoder" submodule): its tensors copied from the
  // checkpoint's "text_encoder.*", and those the checkpoint lacks (left as initialised). Named from the model.
  std::vector<std::string> encoder_loaded, encoder_missing;
};

// Loads checkpoint `dir` (a libmdm checkpoint directory: its EMA weights when present) into the inner
// model with as many levels as the checkpoint's model, and its trained text encoder (text_encoder.*) into this
// model's. Shape mismatches are errors naming the tensor; missing and unexpected names are reported, not fatal.
InitReport init_from_checkpoint(const std::shared_ptr<Denoiser>& model, const std::string& dir);

}  // namespace mdm::train
