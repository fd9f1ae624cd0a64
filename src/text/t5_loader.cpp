// load_t5_encoder: a Hugging Face T5 folder → T5Encoder, parameters as views over the memory-mapped files.
#include <mdm/io/safetensors.h>
#include <mdm/text/t5_encoder.h>
#include <mdm/util/error.h>

#include "json_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

namespace mdm::text {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Where each tensor of a Hugging Face folder lives: one model.safetensors, or the shards an index names.
// Shards open on first use, so that shards holding only decoder tensors are never read.
class HfTensorSource {
 public:
  explicit HfTensorSource(const std::string& folder) {
    const fs::path single = fs::path(folder) / "model.safetensors";
    const fs::path index = fs::path(folder) / "model.safetensors.index.json";
    if (fs::exists(single)) {
      auto file = std::make_shared<io::SafeTensorsFile>(single.string());
      for (const auto& name : file->names()) where_[name] = single.filename().string();
      open_[single.filename().string()] = file;
      listing_ = single.string();
    } else if (fs::exists(index)) {
      read_index(index.string());
      listing_ = index.string();
    } else {
      throw CheckpointError(fmt::format(
          "{}: has neither model.safetensors nor model.safetensors.index.json (libmdm reads safetensors only; "
          "convert a pytorch_model.bin with Hugging Face's save_pretrained(safe_serialization=True))",
          folder));
    }
    folder_ = folder;
  }

  // The file that lists the tensors (model.safetensors or the index), for messages.
  const std::string& listing() const { return listing_; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, file] : where_) out.push_back(name);
    return out;
  }
  bool contains(const std::string& name) const { return where_.count(name) > 0; }

  // The opened file holding `name` (which must be listed).
  const io::SafeTensorsFile& file_of(const std::string& name) {
    const std::string& shard = where_.at(name);
    auto it = open_.find(shard);
    if (it != open_.end()) return *it->second;
    const fs::path path = fs::path(folder_) / shard;
    if (!fs::exists(path)) {
      throw CheckpointError(fmt::format("{}: shard '{}' (holding '{}') does not exist", listing_, shard, name));
    }
    auto file = std::make_shared<io::SafeTensorsFile>(path.string());
    if (!file->contains(name)) {
      throw CheckpointError(
          fmt::format("{}: has no tensor '{}' (the index {} puts it there)", path.string(), name, listing_));
    }
    return *open_.emplace(shard, std::move(file)).first->second;
  }

 private:
  void read_index(const std::string& path) {
    json root = detail::read_json_object<CheckpointError>(path, "");
    if (!root.contains("weight_map") || !root["weight_map"].is_object()) {
      throw CheckpointError(fmt::format("{}: has no 'weight_map' object", path));
    }
    for (const auto& [name, shard] : root["weight_map"].items()) {
      if (!shard.is_string()) throw CheckpointError(fmt::format("{}: weight_map['{}'] is not a file name", path, name));
      const std::string file = shard.get<std::string>();
      // A shard is a file beside the index, never a path elsewhere.
      if (file.empty() || fs::path(file).filename().string() != file) {
        throw CheckpointError(
            fmt::format("{}: weight_map['{}'] = '{}' is not a file name in the folder", path, name, file));
      }
      where_[name] = file;
    }
  }

  std::string folder_, listing_;
  std::map<std::string, std::string> where_;  // tensor → shard file name
  std::map<std::string, std::shared_ptr<io::SafeTensorsFile>> open_;
};

// The names a parameter may be saved under: Hugging Face ties shared and encoder.embed_tokens and saves one.
std::vector<std::string> stored_names(const std::string& parameter) {
  if (parameter == "shared.weight") return {"shared.weight", "encoder.embed_tokens.weight"};
  return {parameter};
}

bool is_encoder_tensor(const std::string& name) {
  return name.rfind("encoder.", 0) == 0 || name.rfind("shared.", 0) == 0;
}

}  // namespace

T5Encoder load_t5_encoder(const std::string& folder, const T5LoadOptions& options) {
  const std::string config_path = (fs::path(folder) / "config.json").string();
  if (!fs::exists(config_path))
    throw ConfigError(fmt::format("{}: does not exist (a T5 folder needs it)", config_path));
  T5Encoder model(read_t5_config(config_path), T5Init::kUninitialized);
  HfTensorSource source(folder);

  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& item : model->named_parameters()) {
    const std::string& parameter = item.key();
    torch::Tensor& target = item.value();
    std::string stored;
    for (const auto& name : stored_names(parameter)) {
      if (source.contains(name)) {
        stored = name;
        break;
      }
    }
    if (stored.empty()) {
      throw CheckpointError(fmt::format("{}: has no tensor '{}' (the encoder that {} describes needs it)",
                                        source.listing(), parameter, config_path));
    }
    const io::SafeTensorsFile& file = source.file_of(stored);
    const auto shape = file.shape(stored);
    if (shape != target.sizes().vec()) {
      throw CheckpointError(fmt::format("{}: tensor '{}' has shape {}, but {} makes it {}", file.path(), stored, shape,
                                        config_path, target.sizes()));
    }
    auto tensor = file.get(stored);  // a view over the mapping
    if (tensor.scalar_type() != options.dtype || options.device != torch::Device(torch::kCPU)) {
      tensor = tensor.to(options.device, options.dtype);
    }
    target.set_data(tensor);
    used.insert(stored);
  }
  for (const auto& name : source.names()) {
    if (is_encoder_tensor(name) && !used.count(name) && name != "encoder.embed_tokens.weight") {
      throw CheckpointError(fmt::format("{}: tensor '{}' has no place in the encoder that {} describes",
                                        source.listing(), name, config_path));
    }
  }
  for (auto& p : model->parameters()) p.requires_grad_(!options.frozen);
  if (options.frozen) model->eval();
  return model;
}

}  // namespace mdm::text
