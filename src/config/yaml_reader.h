// Strict, path-tracking access to a YAML mapping: every read names its key path, every key must be read.
// Internal to the config loader.
#pragma once

#include <mdm/util/error.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mdm::detail {

class OverrideOrigins;

class YamlMap {
 public:
  // `path` is the dotted key path of this mapping ("model.inner_config"), "" for the document root.
  // strict: a key written twice is an error; otherwise the last one wins (PyYAML's rule, for the
  // reference implementation's files, one of which repeats `diffusion_config:`).
  // origins: the `--set` overrides applied to the document; an error at a key one of them wrote names it.
  YamlMap(YAML::Node node, std::string file, std::string path, bool strict = true,
          std::shared_ptr<const OverrideOrigins> origins = nullptr);

  bool has(const std::string& key) const;
  std::string path_of(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  // An error at entry `index` of the list at `key` ("model.resolution_channels [1] must be ...").
  [[noreturn]] void fail_item(const std::string& key, size_t index, const std::string& what) const;

  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_double(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<std::vector<int64_t>> get_int_list(const std::string& key) const;
  std::optional<std::vector<double>> get_double_list(const std::string& key) const;
  std::optional<YamlMap> get_map(const std::string& key) const;
  std::optional<std::vector<YamlMap>> get_map_list(const std::string& key) const;
  std::optional<YAML::Node> get_raw(const std::string& key) const;

  // Reads into `out` only when the key is present (defaults stay otherwise).
  template <typename T>
  void read(const std::string& key, T& out) const;

  // Every key of the mapping that no get_* asked for is an error (with a suggestion when close).
  void finish() const;
  // Marks keys as read without reading them (keys of a foreign layout that carry no meaning here).
  void ignore(const std::vector<std::string>& keys) const;

  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  const YAML::Node& node() const { return node_; }

 private:
  YAML::Node lookup(const std::string& key) const;
  std::string where(const YAML::Node& n) const;
  // Throws at `path`; `origin_path` is the key path whose override (if any) the message names instead of the file.
  [[noreturn]] void raise(int line, const std::string& path, const std::string& origin_path,
                          const std::string& what) const;
  int line_of(const std::string& key) const;

  YAML::Node node_;
  std::string file_;
  std::string path_;
  bool strict_ = true;
  std::shared_ptr<const OverrideOrigins> origins_;
  mutable std::set<std::string> used_;
};

template <> void YamlMap::read(const std::string&, int64_t&) const;
template <> void YamlMap::read(const std::string&, double&) const;
template <> void YamlMap::read(const std::string&, bool&) const;
template <> void YamlMap::read(const std::string&, std::string&) const;
template <> void YamlMap::read(const std::string&, std::vector<int64_t>&) const;
template <> void YamlMap::read(const std::string&, std::vector<double>&) const;

// "'abc'", "a list", "a mapping" or "nothing", for messages.
std::string describe(const YAML::Node& n);

[[noreturn]] void throw_config_error(const std::string& file, int line, const std::string& path,
                                     const std::string& what);

}  // namespace mdm::detail
