#include <mdm/io/checkpoint.h>
#include <mdm/io/safetensors.h>
#include <mdm/models/nested_unet.h>
#include <mdm/train/progressive.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h since fmt 11)

#include <map>

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
  // A text encoder trained with the denoiser is a submodule of the outermost model ("text_encoder.*"), not of
  // the inner one: its tensors go to this model's encoder, so a progressive stage keeps the learned encoder.
  const std::string kEncoder = "text_encoder.";
  std::map<std::string, torch::Tensor> unet_tensors, encoder_tensors;
  for (const auto& [name, t] : io::load_safetensors(info.weights_file)) {
    if (name.rfind(kEncoder, 0) == 0) {
      encoder_tensors.emplace(name.substr(kEncoder.size()), t);
    } else {
      unet_tensors.emplace(name, t);
    }
  }
  report.load = load_state_dict(*inner, unet_tensors, /*strict=*/false, info.weights_file);
  std::shared_ptr<torch::nn::Module> encoder;
  for (const auto& child : model->named_children()) {
    if (child.key() + "." == kEncoder) encoder = child.value();
  }
  if (!encoder_tensors.empty() || encoder) {
    LoadReport enc;
    if (encoder) {
      enc = load_state_dict(*encoder, encoder_tensors, /*strict=*/false, info.weights_file);
    } else {
      for (const auto& [name, t] : encoder_tensors) enc.unexpected.push_back(name);
    }
    // Named from the outermost model: the report's prefix applies to the inner model's tensors only.
    for (const auto& n : enc.loaded) report.encoder_loaded.push_back(kEncoder + n);
    for (const auto& n : enc.missing) report.encoder_missing.push_back(kEncoder + n);
    for (const auto& n : enc.unexpected) report.load.unexpected.push_back(kEncoder + n);
  }
  return report;
}

}  // namespace mdm::train
