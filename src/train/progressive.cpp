#include <mdm/io/checkpoint.h>
#include <mdm/io/safetensors.h>
#include <mdm/models/nested_unet.h>
#include <mdm/train/progressive.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h since fmt 11)

namespace mdm::train {

std::shared_ptr<Denoiser> inner_model(const std::shared_ptr<Denoiser>& model, size_t levels) {
  std::shared_ptr<Denoiser> m = model;
  while (m->resolutions().size() > levels) {  // an inner UNet reports its own levels (unet.cpp)
    auto nested = std::dynamic_pointer_cast<NestedUNetImpl>(m);
    if (!nested) break;
    m = nested->inner_unet;
  }
  if (m->resolutions().size() != levels) {
    throw Error(fmt::format("the model has no inner model of {} level(s) (its levels: {})", levels,
                            fmt::join(model->resolutions(), ", ")));
  }
  return m;
}

std::string inner_prefix(const ModelConfig& model, size_t levels) {
  const size_t total = model.levels().size();
  if (levels == 0 || levels > total) throw Error(fmt::format("no inner model of {} level(s) in {}", levels, total));
  std::string prefix;
  for (size_t i = levels; i < total; ++i) prefix += "inner_unet.";
  return prefix;
}

ModelConfig inner_model_config(const ModelConfig& model, size_t levels) {
  if (model.is_dimr()) {  // no inner model: a DiMR trains and samples every branch together
    const size_t branches = model.dimr.branches.size();
    if (levels != branches) throw Error(fmt::format("a DiMR model has no inner model of {} level(s) ({} branches)", levels, branches));
    return model;
  }
  const size_t total = model.levels().size();
  if (levels == 0 || levels > total) throw Error(fmt::format("no inner model of {} level(s) in {}", levels, total));
  ModelConfig out = model;
  for (size_t i = levels; i < total; ++i) {
    UNetConfig inner = out.unet.inner();
    out.unet = std::move(inner);
  }
  if (!out.unet.has_inner()) out.arch = "unet";
  return out;
}

InitReport init_from_checkpoint(const std::shared_ptr<Denoiser>& model, const std::string& dir) {
  const auto info = io::read_checkpoint_info(dir);
  const size_t levels = info.config.model.levels().size();
  if (levels >= model->resolutions().size()) {
    throw CheckpointError(fmt::format("{}: init_from needs a model with fewer levels than this one ({}), it has {}",
                                      dir, model->resolutions().size(), levels));
  }
  auto inner = inner_model(model, levels);
  if (inner->resolutions() != info.config.model.level_resolutions()) {
    throw CheckpointError(fmt::format("{}: its levels ({}) are not this model's inner levels ({})", dir,
                                      fmt::join(info.config.model.level_resolutions(), ", "),
                                      fmt::join(inner->resolutions(), ", ")));
  }
  InitReport report;
  report.checkpoint = info.weights_file;
  report.prefix = inner_prefix(model->config(), levels);
  const auto tensors = io::load_safetensors(info.weights_file);
  report.load = load_state_dict(*inner, tensors, /*strict=*/false, info.weights_file);
  return report;
}

}  // namespace mdm::train
