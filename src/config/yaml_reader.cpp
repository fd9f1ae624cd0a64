#include "yaml_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "overrides.h"

namespace mdm::detail {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

template <typename T>
std::optional<T> scalar_as(const YAML::Node& n) {
  if (!n.IsScalar()) return std::nullopt;
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}

// yaml-cpp's as<int64_t> accepts "1e3"-style text inconsistently; insist on plain integers.
std::optional<int64_t> scalar_int(const YAML::Node& n) {
  if (!n.IsScalar()) return std::nullopt;
  const std::string& s = n.Scalar();
  if (s.empty()) return std::nullopt;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  std::string digits;
  for (; i < s.size(); ++i) {
    if (s[i] == '_') continue;  // YAML 1.1 digit separators (300_000)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    digits += s[i];
  }
  if (digits.empty()) return std::nullopt;
  try {
    int64_t v = std::stoll(digits);
    return s[0] == '-' ? -v : v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::string describe(const YAML::Node& n) {
  if (n.IsScalar()) return fmt::format("'{}'", n.Scalar());
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

void throw_config_error(const std::string& file, int line, const std::string& path, const std::string& what) {
  std::string where = file.empty() ? std::string("<config>") : file;
  if (line > 0) where += fmt::format(":{}", line);
  if (path.empty()) throw ConfigError(fmt::format("{}: {}", where, what));
  throw ConfigError(fmt::format("{}: {} {}", where, path, what));
}

YamlMap::YamlMap(YAML::Node node, std::string file, std::string path, bool strict,
                 std::shared_ptr<const OverrideOrigins> origins)
    : node_(std::move(node)),
      file_(std::move(file)),
      path_(std::move(path)),
      strict_(strict),
      origins_(std::move(origins)) {
  if (!node_.IsMap()) {
    raise(node_.Mark().is_null() ? 0 : node_.Mark().line + 1, path_, path_,
          fmt::format("must be a mapping of keys, got {}", describe(node_)));
  }
  // A key written twice is almost always an editing mistake; say so instead of picking one.
  if (!strict_) return;
  std::set<std::string> seen;
  for (const auto& kv : node_) {
    auto key = kv.first.as<std::string>();
    if (!seen.insert(key).second) {
      raise(kv.first.Mark().line + 1, path_of(key), path_of(key), "appears twice in the same mapping");
    }
  }
}

std::string YamlMap::path_of(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

std::string YamlMap::where(const YAML::Node& n) const {
  return n.Mark().is_null() ? std::string() : std::to_string(n.Mark().line + 1);
}

YAML::Node YamlMap::lookup(const std::string& key) const {
  YAML::Node found;
  for (const auto& kv : node_) {
    if (kv.first.as<std::string>() == key) found.reset(kv.second);  // the last one wins (rebind, not assign)
  }
  return found;
}

bool YamlMap::has(const std::string& key) const {
  used_.insert(key);
  YAML::Node n = lookup(key);
  return n.IsDefined() && !n.IsNull();
}

void YamlMap::raise(int line, const std::string& path, const std::string& origin_path, const std::string& what) const {
  if (origins_) {
    if (const std::string* by = origins_->find(origin_path)) {
      throw ConfigError(path.empty() ? fmt::format("{}: {}", *by, what) : fmt::format("{}: {} {}", *by, path, what));
    }
  }
  throw_config_error(file_, line, path, what);
}

int YamlMap::line_of(const std::string& key) const {
  YAML::Node n = lookup(key);
  int line = (n.IsDefined() && !n.Mark().is_null()) ? n.Mark().line + 1 : 0;
  if (line == 0 && !node_.Mark().is_null()) line = node_.Mark().line + 1;
  return line;
}

void YamlMap::fail(const std::string& key, const std::string& what) const {
  raise(line_of(key), path_of(key), path_of(key), what);
}

void YamlMap::fail_item(const std::string& key, size_t index, const std::string& what) const {
  raise(line_of(key), path_of(key), fmt::format("{}[{}]", path_of(key), index), fmt::format("[{}] {}", index, what));
}

std::optional<int64_t> YamlMap::get_int(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  YAML::Node n = lookup(key);
  auto v = scalar_int(n);
  if (!v) fail(key, fmt::format("must be an integer, got {}", describe(n)));
  return v;
}

std::optional<double> YamlMap::get_double(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  YAML::Node n = lookup(key);
  auto v = scalar_as<double>(n);
  if (!v) fail(key, fmt::format("must be a number, got {}", describe(n)));
  return v;
}

std::optional<bool> YamlMap::get_bool(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  YAML::Node n = lookup(key);
  auto v = scalar_as<bool>(n);
  if (!v) {
    // The reference writes flags as 0/1.
    auto i = scalar_int(n);
    if (i && (*i == 0 || *i == 1)) return *i == 1;
    fail(key, fmt::format("must be true or false, got {}", describe(n)));
  }
  return v;
}

std::optional<std::string> YamlMap::get_string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  YAML::Node n = lookup(key);
  if (!n.IsScalar()) fail(key, fmt::format("must be a string, got {}", describe(n)));
  return n.Scalar();
}

std::optional<std::vector<int64_t>> YamlMap::get_int_list(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  YAML::Node n = lookup(key);
  if (!n.IsSequence()) fail(key, fmt::format("must be a list of integers, got {}", describe(n)));
  std::vector<int64_t> out;
  for (size_t i = 0; i < n.size(); ++i) {
    auto v = scalar_int(n[i]);
    if (!v) fail_item(key, i, fmt::format("must be an integer, got {}", describe(n[i])));
    out.push_back(*v);
  }
  return out;
}

std::optional<std::vector<double>> YamlMap::get_double_list(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  YAML::Node n = lookup(key);
  if (!n.IsSequence()) fail(key, fmt::format("must be a list of numbers, got {}", describe(n)));
  std::vector<double> out;
  for (size_t i = 0; i < n.size(); ++i) {
    auto v = scalar_as<double>(n[i]);
    if (!v) fail_item(key, i, fmt::format("must be a number, got {}", describe(n[i])));
    out.push_back(*v);
  }
  return out;
}

std::optional<YamlMap> YamlMap::get_map(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  YAML::Node n = lookup(key);
  if (!n.IsMap()) fail(key, fmt::format("must be a mapping of keys, got {}", describe(n)));
  return YamlMap(n, file_, path_of(key), strict_, origins_);
}

std::optional<std::vector<YamlMap>> YamlMap::get_map_list(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  YAML::Node n = lookup(key);
  if (!n.IsSequence()) fail(key, fmt::format("must be a list, got {}", describe(n)));
  std::vector<YamlMap> out;
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsMap()) fail_item(key, i, fmt::format("must be a mapping of keys, got {}", describe(n[i])));
    out.emplace_back(n[i], file_, fmt::format("{}[{}]", path_of(key), i), strict_, origins_);
  }
  return out;
}

std::optional<YAML::Node> YamlMap::get_raw(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return lookup(key);
}

template <>
void YamlMap::read(const std::string& key, int64_t& out) const {
  if (auto v = get_int(key)) out = *v;
}
template <>
void YamlMap::read(const std::string& key, double& out) const {
  if (auto v = get_double(key)) out = *v;
}
template <>
void YamlMap::read(const std::string& key, bool& out) const {
  if (auto v = get_bool(key)) out = *v;
}
template <>
void YamlMap::read(const std::string& key, std::string& out) const {
  if (auto v = get_string(key)) out = *v;
}
template <>
void YamlMap::read(const std::string& key, std::vector<int64_t>& out) const {
  if (auto v = get_int_list(key)) out = *v;
}
template <>
void YamlMap::read(const std::string& key, std::vector<double>& out) const {
  if (auto v = get_double_list(key)) out = *v;
}

void YamlMap::ignore(const std::vector<std::string>& keys) const {
  for (const auto& k : keys) used_.insert(k);
}

void YamlMap::finish() const {
  std::vector<std::string> known(used_.begin(), used_.end());
  for (const auto& kv : node_) {
    auto key = kv.first.as<std::string>();
    if (used_.count(key)) continue;
    std::string hint;
    size_t best = 3;
    for (const auto& k : known) {
      size_t d = edit_distance(key, k);
      if (d < best) {
        best = d;
        hint = fmt::format(" (did you mean '{}'?)", k);
      }
    }
    raise(kv.first.Mark().line + 1, path_of(key), path_of(key), "is not a known key" + hint);
  }
}

}  // namespace mdm::detail
