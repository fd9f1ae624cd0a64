// Shared between the two layouts the loader reads (libmdm's and apple/ml-mdm's). Internal.
#pragma once

#include <mdm/config/config.h>

#include "yaml_reader.h"

namespace mdm::detail {

Config parse_native(const YamlMap& root);
// apple/ml-mdm's layout: `unet_config:` (+ `model:`/`vision_model:`, `diffusion_config:`, `reader_config:`).
Config parse_reference(const YamlMap& root);

class OverrideOrigins;
// mdm::validate, naming the `--set` override that wrote a failing key (origins may be null).
void validate(const Config& config, const std::string& source, const OverrideOrigins* origins);

}  // namespace mdm::detail
