// `--set key.path=value` overrides, applied to the YAML document before it is parsed, so that an override is
// checked exactly like the file. Remembers which override wrote which key path, so that an error names the
// override instead of a line of the file. Internal to the config loader.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace mdm::detail {

class OverrideOrigins {
 public:
  // `path` and everything below it came from `override_text` ("--set train.optimizer={lr: 1}").
  void record_value(const std::string& path, const std::string& override_text);
  // `path` is a mapping that `override_text` created on its way to its key (only `path` itself is its own).
  void record_created(const std::string& path, const std::string& override_text);

  // The override ("--set k=v") that wrote `path` or a value above it; nullptr when the path is the file's.
  const std::string* find(const std::string& path) const;

  // Every override, in order (for messages).
  void add(const std::string& override_text) { all_.push_back(override_text); }
  bool empty() const { return all_.empty(); }
  // "--set a=1, --set b=2", for errors that follow from several keys together.
  std::string list() const;

 private:
  struct Origin {
    std::string text;
    bool subtree = true;  // false: a mapping created on the way; its other keys may come from elsewhere
  };
  std::map<std::string, Origin> origins_;
  std::vector<std::string> all_;
};

// Applies "key.path=value" overrides to `doc` (a mapping) in order, the last one winning. A key path is
// dotted keys with list indices (`train.stages[1].steps`); missing mappings are created, indices address
// existing list elements. The value is YAML flow (`3e-4`, `true`, `[0.9, 0.999]`, `{a: 1}`, a string;
// nothing = null, as `key:` in a file). Throws ConfigError naming a malformed override.
OverrideOrigins apply_overrides(YAML::Node& doc, const std::vector<std::string>& overrides);

}  // namespace mdm::detail
