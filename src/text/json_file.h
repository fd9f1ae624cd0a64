// Reading a JSON file (a Hugging Face config.json or safetensors index) with errors of the caller's type that
// name the file: ConfigError for a config, CheckpointError for weights.
#pragma once

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>

namespace mdm::text::detail {

// The parsed JSON object in `path`; throws ErrorT naming the file when it cannot be opened, is not valid JSON
// or is not an object. `what` names the file's role in the open error ("the T5 config").
template <typename ErrorT>
nlohmann::json read_json_object(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw ErrorT(fmt::format("{}: cannot open{}", path, what.empty() ? "" : " " + what));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw ErrorT(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
  if (!root.is_object()) throw ErrorT(fmt::format("{}: not a JSON object", path));
  return root;
}

}  // namespace mdm::text::detail
