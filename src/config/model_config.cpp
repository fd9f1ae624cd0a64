#include <mdm/config/model_config.h>

namespace mdm {

std::vector<const UNetConfig*> ModelConfig::levels() const {
  std::vector<const UNetConfig*> out;
  for (const UNetConfig* u = &unet;; u = &u->inner()) {
    out.push_back(u);
    if (!u->has_inner()) break;
  }
  return out;
}

std::vector<int64_t> ModelConfig::level_resolutions() const {
  std::vector<int64_t> out;
  if (is_dimr()) {
    for (const auto& b : dimr.branches) out.push_back(b.resolution);
    return out;
  }
  for (const UNetConfig* u : levels()) out.insert(out.begin(), u->resolutions.empty() ? 0 : u->resolutions.front());
  return out;
}

std::vector<std::string> ModelConfig::level_schedules() const {
  if (is_dimr()) return std::vector<std::string>(dimr.branches.size(), dimr.schedule);
  std::vector<std::string> out;
  for (const UNetConfig* u : levels()) out.insert(out.begin(), u->schedule);
  return out;
}

std::string to_string(ConditioningKind kind) {
  switch (kind) {
    case ConditioningKind::Text: return "text";
    case ConditioningKind::Class: return "class";
    case ConditioningKind::None: return "none";
  }
  return "?";
}

}  // namespace mdm
