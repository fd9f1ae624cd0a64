// `--set key.path=value` overrides: parsed, applied to the YAML document in order, and remembered by key
// path so that the loader's and validate()'s errors can name the override that wrote a key.
#include "overrides.h"

#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <iterator>

#include "yaml_reader.h"

namespace mdm::detail {
namespace {

// One step of a key path: a key of a mapping or an index into a list.
struct Step {
  std::string key;  // empty for an index
  size_t index = 0;
  bool is_index() const { return key.empty(); }
};

[[noreturn]] void malformed(const std::string& where, const std::string& what) {
  throw ConfigError(fmt::format("{}: {}", where, what));
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string join(const std::string& parent, const Step& step) {
  if (step.is_index()) return fmt::format("{}[{}]", parent, step.index);
  return parent.empty() ? step.key : parent + "." + step.key;
}

// Parses "[N]" at path[at] (path[at] == '['); returns the position after ']'.
size_t parse_index(const std::string& path, size_t at, const std::string& where, std::vector<Step>& steps) {
  const size_t close = path.find(']', at);
  const std::string digits = path.substr(at + 1, close == std::string::npos ? std::string::npos : close - at - 1);
  const bool ok = close != std::string::npos && !digits.empty() && digits.size() <= 9 &&
                  std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); });
  if (!ok) {
    malformed(where, fmt::format("'{}' has a bad list index '{}' (expected [0], [1], ...)", path,
                                 path.substr(at, close == std::string::npos ? std::string::npos : close - at + 1)));
  }
  steps.push_back(Step{"", static_cast<size_t>(std::stoul(digits))});
  return close + 1;
}

// "train.stages[1].steps" -> train, stages, [1], steps.
std::vector<Step> parse_key_path(const std::string& path, const std::string& where) {
  std::vector<Step> steps;
  size_t i = 0;
  for (;;) {
    const size_t end = std::min(path.find_first_of(".[]", i), path.size());
    if (end == i) malformed(where, fmt::format("the key path '{}' has an empty key", path));
    steps.push_back(Step{path.substr(i, end - i)});
    i = end;
    while (i < path.size() && path[i] == '[') i = parse_index(path, i, where, steps);
    if (i == path.size()) return steps;
    if (path[i] != '.') malformed(where, fmt::format("the key path '{}' has an unexpected '{}'", path, path[i]));
    ++i;
  }
}

YAML::Node parse_value(const std::string& text, const std::string& where) {
  try {
    YAML::Node n = YAML::Load(text);
    if (!n.IsDefined() || n.IsNull()) return YAML::Node(YAML::NodeType::Null);  // `key:` in a file: the default
    return n;
  } catch (const YAML::Exception& e) {
    malformed(where, fmt::format("the value is not valid YAML: {}", e.msg));
  }
}

YAML::Node child_of(const YAML::Node& map, const std::string& key) {
  YAML::Node found;
  for (const auto& kv : map) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) found.reset(kv.second);
  }
  return found;
}

// `list` (at `path`) must be a list with an entry `index`; `map` must be a mapping.
void require_entry(const YAML::Node& list, const std::string& path, size_t index, const std::string& where) {
  if (!list.IsSequence()) malformed(where, fmt::format("{} is {}, not a list", path, describe(list)));
  if (index >= list.size()) {
    malformed(where, fmt::format("{}[{}] is out of range: {} has {} entries", path, index, path, list.size()));
  }
}

void require_map(const YAML::Node& map, const std::string& path, const std::string& key, const std::string& where) {
  if (!map.IsMap()) malformed(where, fmt::format("{} is {}, not a mapping with key '{}'", path, describe(map), key));
}

// Walks to the node that holds the last step, creating missing mappings on the way.
YAML::Node walk(const YAML::Node& doc, const std::vector<Step>& steps, const std::string& where,
                OverrideOrigins& origins, std::string& path) {
  YAML::Node cur = doc;  // a handle: rebind with reset(), never assign (that would overwrite the node)
  for (size_t s = 0; s + 1 < steps.size(); ++s) {
    const Step& step = steps[s];
    const std::string here = join(path, step);
    if (step.is_index()) {
      require_entry(cur, path, step.index, where);
      YAML::Node next = cur[step.index];
      cur.reset(next);
    } else {
      require_map(cur, path, step.key, where);
      YAML::Node next = child_of(cur, step.key);
      if (!next.IsDefined() || next.IsNull()) {
        if (steps[s + 1].is_index()) {
          malformed(where,
                    fmt::format("{} is not set, so {}[{}] addresses nothing (set the whole list: --set {}=[...])", here,
                                here, steps[s + 1].index, here));
        }
        next.reset(YAML::Node(YAML::NodeType::Map));
        cur[step.key] = next;
        origins.record_created(here, where);
      }
      cur.reset(next);
    }
    path = here;
  }
  return cur;
}

void apply_one(YAML::Node& doc, const std::string& text, OverrideOrigins& origins) {
  const std::string where = "--set " + text;
  const size_t eq = text.find('=');
  if (eq == std::string::npos) malformed(where, "expected key.path=value, e.g. --set train.seed=1");
  const std::string key_path = trim(text.substr(0, eq));
  if (key_path.empty()) malformed(where, "the key path before '=' is empty");
  const std::vector<Step> steps = parse_key_path(key_path, where);
  YAML::Node value = parse_value(text.substr(eq + 1), where);

  std::string path;
  YAML::Node holder = walk(doc, steps, where, origins, path);
  const Step& last = steps.back();
  const std::string here = join(path, last);
  if (last.is_index()) {
    require_entry(holder, path, last.index, where);
    holder[last.index] = value;
  } else {
    require_map(holder, path, last.key, where);
    holder[last.key] = value;  // replaces the file's value (the node is shared with the document) or adds the key
  }
  origins.record_value(here, where);
}

bool under(const std::string& path, const std::string& root) {
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
         (path[root.size()] == '.' || path[root.size()] == '[');
}

}  // namespace

void OverrideOrigins::record_value(const std::string& path, const std::string& override_text) {
  for (auto it = origins_.begin(); it != origins_.end();) {
    it = (it->first == path || under(it->first, path)) ? origins_.erase(it) : std::next(it);
  }
  origins_[path] = Origin{override_text, true};
}

void OverrideOrigins::record_created(const std::string& path, const std::string& override_text) {
  origins_[path] = Origin{override_text, false};
}

const std::string* OverrideOrigins::find(const std::string& path) const {
  if (auto it = origins_.find(path); it != origins_.end()) return &it->second.text;
  for (std::string p = path;;) {
    const size_t cut = p.find_last_of(".[");
    if (cut == std::string::npos || cut == 0) return nullptr;
    p.resize(cut);
    if (auto it = origins_.find(p); it != origins_.end() && it->second.subtree) return &it->second.text;
  }
}

std::string OverrideOrigins::list() const { return fmt::format("{}", fmt::join(all_, ", ")); }

OverrideOrigins apply_overrides(YAML::Node& doc, const std::vector<std::string>& overrides) {
  OverrideOrigins origins;
  for (const auto& text : overrides) {
    apply_one(doc, text, origins);
    origins.add("--set " + text);
  }
  return origins;
}

}  // namespace mdm::detail
