// Shared between the two layouts the loader reads (libmdm's and apple/ml-mdm's). Internal.
#pragma once

#include <mdm/config/config.h>

#include "yaml_reader.h"

namespace mdm::detail {

Config parse_native(const YamlMap& root);

// The integer keys of a DiMR branch and their fields, in the order the loader reads and the writer writes them.
inline std::vector<std::pair<const char*, int64_t*>> dimr_int_keys(DiMRBranchConfig& b) {
  return {{"resolution", &b.resolution}, {"patch_size", &b.patch_size}, {"dim", &b.dim},
          {"hidden_dim", &b.hidden_dim}, {"num_heads", &b.num_heads},   {"kernel_size", &b.kernel_size},
          {"num_blocks", &b.num_blocks}};
}
// apple/ml-mdm's layout: `unet_config:` (+ `model:`/`vision_model:`, `diffusion_config:`, `reader_config:`).
Config parse_reference(const YamlMap& root);

class OverrideOrigins;
// mdm::validate, naming the `--set` override that wrote a failing key (origins may be null).
void validate(const Config& config, const std::string& source, const OverrideOrigins* origins);

}  // namespace mdm::detail
