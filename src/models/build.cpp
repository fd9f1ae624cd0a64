#include <mdm/config/config.h>
#include <mdm/models/build.h>
#include <mdm/models/dimr.h>
#include <mdm/models/nested_unet.h>
#include <mdm/models/unet.h>

namespace mdm {

std::shared_ptr<Denoiser> build_model(const ModelConfig& config) {
  validate(config);
  if (config.is_dimr()) return std::make_shared<DiMRImpl>(config);
  if (config.arch == "nested_unet") return std::make_shared<NestedUNetImpl>(config, config.unet);
  return std::make_shared<UNetImpl>(config, config.unet);
}

}  // namespace mdm
