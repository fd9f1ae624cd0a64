#include <mdm/io/checkpoint.h>
#include <mdm/io/safetensors.h>
#include <mdm/models/state_dict.h>
#include <mdm/util/error.h>
#include <mdm/util/remove_tree.h>
#include <mdm/version.h>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace mdm::io {

namespace fs = std::filesystem;

CheckpointInfo read_checkpoint_info(const std::string& dir) {
  if (!fs::is_directory(dir)) throw CheckpointError(fmt::format("{}: no such checkpoint directory", dir));
  const fs::path root(dir);
  if (!fs::exists(root / "config.yaml")) throw CheckpointError(fmt::format("{}: has no config.yaml", dir));
  CheckpointInfo info;
  info.dir = dir;
  info.config = load_config((root / "config.yaml").string());
  for (const char* name : {"ema.safetensors", "model.safetensors"}) {
    if (fs::exists(root / name)) {
      info.weights_file = (root / name).string();
      break;
    }
  }
  if (info.weights_file.empty()) throw CheckpointError(fmt::format("{}: has neither ema.safetensors nor model.safetensors", dir));
  for (const char* name : {"tokenizer.model", "tokenizer.vocab"}) {
    if (fs::exists(root / name)) {
      info.tokenizer_file = (root / name).string();
      break;
    }
  }
  const fs::path state = root / "state.json";
  if (fs::exists(state)) {
    try {
      std::ifstream in(state);
      auto j = nlohmann::json::parse(in);
      info.step = j.value("step", int64_t{0});
    } catch (const std::exception& e) {
      throw CheckpointError(fmt::format("{}: state.json is not valid JSON ({})", dir, e.what()));
    }
  }
  return info;
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw CheckpointError(fmt::format("{}: cannot open to sync ({})", path, std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw CheckpointError(fmt::format("{}: fsync failed ({})", path, std::strerror(err)));
}

void save_checkpoint(const std::string& dir, const Config& config, const torch::nn::Module& model, int64_t step,
                     const torch::nn::Module* ema, const CheckpointExtras& extras) {
  const fs::path final_dir(dir), tmp(dir + ".tmp");
  std::error_code ec;
  mdm::util::remove_tree(tmp, ec);
  if (!fs::create_directories(tmp, ec) && ec) {
    throw CheckpointError(fmt::format("{}: cannot create ({})", tmp.string(), ec.message()));
  }
  {
    std::ofstream out(tmp / "config.yaml");
    out << to_yaml(config);
    if (!out) throw CheckpointError(fmt::format("{}: cannot write config.yaml", tmp.string()));
  }
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"libmdm", version()}};
  save_safetensors((tmp / "model.safetensors").string(), state_dict(model), meta);
  if (ema) save_safetensors((tmp / "ema.safetensors").string(), state_dict(*ema), meta);
  if (!extras.optimizer.empty() || !extras.state_json.empty()) save_safetensors((tmp / "optimizer.safetensors").string(), extras.optimizer, meta);
  {
    std::ofstream out(tmp / "state.json");
    if (extras.state_json.empty()) {
      nlohmann::json j = {{"step", step}, {"library_version", version()}};
      out << j.dump(2) << "\n";
    } else {
      out << extras.state_json;
    }
    if (!out) throw CheckpointError(fmt::format("{}: cannot write state.json", tmp.string()));
  }
  for (const auto& [name, source] : extras.files) {
    fs::copy_file(source, tmp / name, fs::copy_options::overwrite_existing, ec);
    if (ec) throw CheckpointError(fmt::format("{}: cannot copy {} into it ({})", tmp.string(), source, ec.message()));
  }
  for (const auto& entry : fs::directory_iterator(tmp)) fsync_path(entry.path().string());
  fsync_path(tmp.string());
  // Replace an existing checkpoint only once the new one is complete: old → DIR.old, tmp → DIR, drop old.
  const fs::path old(dir + ".old");
  mdm::util::remove_tree(old, ec);
  if (fs::exists(final_dir)) fs::rename(final_dir, old, ec);
  if (ec) throw CheckpointError(fmt::format("{}: cannot move the previous checkpoint aside ({})", dir, ec.message()));
  fs::rename(tmp, final_dir, ec);
  if (ec) throw CheckpointError(fmt::format("{}: cannot move {} into place ({})", dir, tmp.string(), ec.message()));
  mdm::util::remove_tree(old, ec);
  fsync_path(final_dir.parent_path().empty() ? "." : final_dir.parent_path().string());
}

}  // namespace mdm::io
