// Builds the denoiser a model config describes, freshly initialised (zero-initialised output layers).
#pragma once

#include <mdm/config/model_config.h>
#include <mdm/models/denoiser.h>

#include <memory>

namespace mdm {

// arch: unet → UNet, nested_unet → NestedUNet (nested to the depth of inner_config), dimr → DiMR.
// Validates the config first (mdm::ConfigError on a bad one).
std::shared_ptr<Denoiser> build_model(const ModelConfig& config);

}  // namespace mdm
