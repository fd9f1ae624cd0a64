// apple/ml-mdm checkpoints → libmdm checkpoints: reading the converter script's output, mapping the keys,
// checking every tensor against the model and writing the checkpoint; see io/reference_checkpoint.h.
#include <fmt/format.h>
#include <mdm/io/checkpoint.h>
#include <mdm/io/reference_checkpoint.h>
#include <mdm/io/safetensors.h>
#include <mdm/models/build.h>
#include <mdm/models/state_dict.h>
#include <mdm/util/error.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mdm::io {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "libmdm-reference-extract";

// items.args.<path...> as an integer, or `fallback` when the path is absent or not an integer.
int64_t json_int(const nlohmann::json& root, std::initializer_list<const char*> path, int64_t fallback) {
  const nlohmann::json* node = &root;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return fallback;
    node = &(*node)[key];
  }
  return node->is_number_integer() ? node->get<int64_t>() : fallback;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

ReferenceExtract read_reference_extract(const std::string& dir) {
  const fs::path root(dir);
  const fs::path json_path = root / "reference.json", tensors_path = root / "state_dict.safetensors";
  for (const auto& p : {json_path, tensors_path}) {
    if (!fs::exists(p)) {
      throw CheckpointError(
          fmt::format("{}: not found (write it with scripts/convert-reference-checkpoint.py)", p.string()));
    }
  }
  nlohmann::json j;
  try {
    std::ifstream in(json_path);
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw CheckpointError(fmt::format("{}: not valid JSON ({})", json_path.string(), e.what()));
  }
  if (!j.is_object() || j.value("format", std::string()) != kFormat) {
    throw CheckpointError(fmt::format("{}: not written by convert-reference-checkpoint.py (format is not \"{}\")",
                                      json_path.string(), kFormat));
  }
  ReferenceExtract extract;
  extract.dir = dir;
  extract.tensors = load_safetensors(tensors_path.string());
  const auto& items = j.contains("items") ? j["items"] : nlohmann::json::object();
  extract.step = json_int(items, {"batch_num"}, 0);
  extract.text_feature_dim = json_int(items, {"args", "unet_config", "conditioning_feature_dim"}, -1);
  if (items.contains("args") && items["args"].is_object() && items["args"].contains("model") &&
      items["args"]["model"].is_string()) {
    extract.model = items["args"]["model"].get<std::string>();
  }
  return extract;
}

std::string map_reference_key(const std::string& key) {
  std::string k = key;
  // Wrappers nest in either order (DDP around a compiled model, or the other way).
  for (bool stripped = true; stripped;) {
    stripped = false;
    for (const std::string prefix : {"module.", "_orig_mod."}) {
      if (starts_with(k, prefix)) {
        k = k.substr(prefix.size());
        stripped = true;
      }
    }
  }
  // NestedUNetConfig.interp_conditioning creates interp_layer1/2, which forward never calls
  // (reference-facts.md §2.3): libmdm has no such layers.
  std::stringstream parts(k);
  std::string part;
  while (std::getline(parts, part, '.')) {
    if (part == "interp_layer1" || part == "interp_layer2") return "";
  }
  return k;
}

ConvertReport convert_reference_checkpoint(const ReferenceExtract& extract, Config config, const std::string& out_dir,
                                           const ConvertOptions& options) {
  const std::string source = (fs::path(extract.dir) / "state_dict.safetensors").string();
  if (!extract.model.empty() && (extract.model == "unet") != (config.model.arch == "unet")) {
    throw CheckpointError(fmt::format("{}: the checkpoint was trained as model '{}', but {} describes a {}", source,
                                      extract.model, config.source.empty() ? "the config" : config.source,
                                      config.model.arch));
  }
  if (extract.text_feature_dim > 0 && config.model.conditioning == ConditioningKind::Text) {
    config.model.text_feature_dim = extract.text_feature_dim;
  }
  if (!options.text_weights.empty()) config.text.weights = fs::absolute(options.text_weights).string();
  validate(config, config.source);

  ConvertReport report;
  std::map<std::string, torch::Tensor> mapped;
  for (const auto& [key, tensor] : extract.tensors) {
    const std::string ours = map_reference_key(key);
    if (ours.empty()) {
      report.dropped.push_back(key);
      continue;
    }
    if (ours != key) report.renamed.push_back(key + " -> " + ours);
    if (!mapped.emplace(ours, tensor).second) {
      throw CheckpointError(fmt::format("{}: two tensors map to '{}' (one of them is '{}')", source, ours, key));
    }
  }
  auto model = build_model(config.model);
  const LoadReport loaded = load_state_dict(*model, mapped, /*strict=*/true, source);
  report.tensors = static_cast<int64_t>(loaded.loaded.size());
  report.parameters = count_parameters(*model);

  CheckpointExtras extras;
  extras.files.emplace_back("reference.json", (fs::path(extract.dir) / "reference.json").string());
  if (!options.tokenizer.empty()) {
    if (!fs::exists(options.tokenizer))
      throw CheckpointError(fmt::format("{}: no such tokenizer file", options.tokenizer));
    const bool vocab = fs::path(options.tokenizer).extension() == ".vocab";
    extras.files.emplace_back(vocab ? "tokenizer.vocab" : "tokenizer.model", options.tokenizer);
  }
  save_checkpoint(out_dir, config, *model, extract.step, nullptr, extras);
  report.config = std::move(config);
  return report;
}

}  // namespace mdm::io
