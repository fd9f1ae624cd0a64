#include <mdm/io/checkpoint.h>
#include <mdm/io/safetensors.h>
#include <mdm/train/train_checkpoint.h>
#include <mdm/util/error.h>
#include <mdm/util/remove_tree.h>
#include <mdm/version.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mdm::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(const std::vector<uint8_t>& b) {
  std::string out;
  out.reserve((b.size() + 2) / 3 * 4);
  for (size_t i = 0; i < b.size(); i += 3) {
    const uint32_t n = (uint32_t{b[i]} << 16) | (i + 1 < b.size() ? uint32_t{b[i + 1]} << 8 : 0) |
                       (i + 2 < b.size() ? uint32_t{b[i + 2]} : 0);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += i + 1 < b.size() ? kB64[(n >> 6) & 63] : '=';
    out += i + 2 < b.size() ? kB64[n & 63] : '=';
  }
  return out;
}

std::vector<uint8_t> base64_decode(const std::string& s) {
  if (s.size() % 4 != 0) throw Error("base64: length is not a multiple of 4");
  auto value = [](char c) -> int {
    const char* p = std::strchr(kB64, c);
    return c != '\0' && p ? static_cast<int>(p - kB64) : -1;
  };
  std::vector<uint8_t> out;
  for (size_t i = 0; i < s.size(); i += 4) {
    int v[4];
    for (int k = 0; k < 4; ++k) {
      v[k] = s[i + k] == '=' && k >= 2 && i + 4 == s.size() ? 0 : value(s[i + k]);
      if (v[k] < 0) throw Error(fmt::format("base64: bad character at {}", i + k));
    }
    const uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(static_cast<uint8_t>(n >> 16));
    if (s[i + 2] != '=') out.push_back(static_cast<uint8_t>((n >> 8) & 0xff));
    if (s[i + 3] != '=') out.push_back(static_cast<uint8_t>(n & 0xff));
  }
  return out;
}

std::string TrainState::to_json() const {
  json j = {{"step", step},
            {"stage", stage},
            {"lr", lr},
            {"data", {{"epoch", data_epoch}, {"cursor", data_cursor}}},
            {"rng", {{"trainer", base64_encode(rng)}, {"default_cpu", base64_encode(default_rng)}}},
            {"world_size", world_size},
            {"nonfinite_steps", nonfinite_steps},
            {"skipped_records", skipped_records},
            {"train_seconds", train_seconds},
            {"library_version", library_version},
            {"git_describe", git_describe}};
  if (!rank_positions.empty()) {
    json ranks = json::array();
    for (const auto& [epoch, cursor] : rank_positions) ranks.push_back({{"epoch", epoch}, {"cursor", cursor}});
    j["data"]["ranks"] = ranks;
  }
  return j.dump(2) + "\n";
}

TrainState TrainState::from_json(const std::string& text, const std::string& source) {
  TrainState s;
  try {
    const json j = json::parse(text);
    s.step = j.at("step").get<int64_t>();
    s.stage = j.at("stage").get<int64_t>();
    s.lr = j.at("lr").get<double>();
    s.data_epoch = j.at("data").at("epoch").get<int64_t>();
    s.data_cursor = j.at("data").at("cursor").get<int64_t>();
    s.rng = base64_decode(j.at("rng").at("trainer").get<std::string>());
    s.default_rng = base64_decode(j.at("rng").at("default_cpu").get<std::string>());
    s.world_size = j.value("world_size", int64_t{1});
    if (j.at("data").contains("ranks")) {
      for (const auto& r : j.at("data").at("ranks")) {
        s.rank_positions.emplace_back(r.at("epoch").get<int64_t>(), r.at("cursor").get<int64_t>());
      }
    }
    s.nonfinite_steps = j.value("nonfinite_steps", int64_t{0});
    s.skipped_records = j.value("skipped_records", int64_t{0});
    s.train_seconds = j.value("train_seconds", 0.0);
    s.library_version = j.value("library_version", std::string());
    s.git_describe = j.value("git_describe", std::string());
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw CheckpointError(fmt::format("{}: not a training state ({})", source, e.what()));
  }
  return s;
}

std::string checkpoint_dir_name(const std::string& run_dir, int64_t step) {
  return (fs::path(run_dir) / fmt::format("step_{:08d}", step)).string();
}

std::string save_training_checkpoint(const std::string& run_dir, const Config& config, const torch::nn::Module& model,
                                     const torch::nn::Module& ema, const Adam& optimizer, const TrainState& state,
                                     int64_t keep, const std::vector<std::pair<std::string, std::string>>& files) {
  const std::string dir = checkpoint_dir_name(run_dir, state.step);
  io::CheckpointExtras extras;
  extras.files = files;
  extras.optimizer = optimizer.state_dict();
  extras.state_json = state.to_json();
  io::save_checkpoint(dir, config, model, state.step, &ema, extras);

  // last → the new directory, replaced atomically (symlink to a temporary name, then rename over).
  const fs::path last = fs::path(run_dir) / "last", tmp = fs::path(run_dir) / "last.tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_directory_symlink(fs::path(dir).filename(), tmp, ec);
  if (!ec) fs::rename(tmp, last, ec);
  if (ec) throw CheckpointError(fmt::format("{}: cannot point last at {} ({})", run_dir, dir, ec.message()));

  std::vector<fs::path> steps;
  for (const auto& e : fs::directory_iterator(run_dir)) {
    const auto name = e.path().filename().string();
    if (e.is_directory() && !e.is_symlink() && name.rfind("step_", 0) == 0 && name.find('.') == std::string::npos) {
      steps.push_back(e.path());
    }
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < steps.size(); ++i) {
    mdm::util::remove_tree(steps[i], ec);
    if (ec) spdlog::warn("cannot remove old checkpoint {}: {}", steps[i].string(), ec.message());
  }
  return dir;
}

std::string latest_checkpoint(const std::string& run_dir) {
  const fs::path last = fs::path(run_dir) / "last";
  std::error_code ec;
  if (!fs::exists(last, ec)) return "";
  return fs::canonical(last, ec).string();
}

LoadedTraining load_training_checkpoint(const std::string& dir) {
  LoadedTraining out;
  out.dir = dir;
  for (const char* name : {"config.yaml", "model.safetensors", "ema.safetensors", "optimizer.safetensors", "state.json"}) {
    if (!fs::exists(fs::path(dir) / name)) {
      throw CheckpointError(fmt::format("{}: has no {} — not a training checkpoint (or an incomplete one)", dir, name));
    }
  }
  out.config = load_config((fs::path(dir) / "config.yaml").string());
  out.model = io::load_safetensors((fs::path(dir) / "model.safetensors").string());
  out.ema = io::load_safetensors((fs::path(dir) / "ema.safetensors").string());
  out.optimizer = io::load_safetensors((fs::path(dir) / "optimizer.safetensors").string());
  std::ifstream in(fs::path(dir) / "state.json");
  std::stringstream text;
  text << in.rdbuf();
  out.state = TrainState::from_json(text.str(), (fs::path(dir) / "state.json").string());
  return out;
}

}  // namespace mdm::train
