#include <mdm/models/state_dict.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace mdm {

std::vector<std::pair<std::string, torch::Tensor>> state_dict(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  // Interleave per submodule as PyTorch does (each module's parameters, then its buffers, depth first),
  // so the order equals the reference's state_dict() order.
  for (const auto& item : module.named_modules("", /*include_self=*/true)) {
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
    for (const auto& b : item.value()->named_buffers(/*recurse=*/false)) out.emplace_back(prefix + b.key(), b.value());
  }
  return out;
}

LoadReport load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors, bool strict,
                           const std::string& source) {
  LoadReport report;
  torch::NoGradGuard no_grad;
  std::map<std::string, bool> seen;
  for (auto& [name, target] : state_dict(module)) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      report.missing.push_back(name);
      continue;
    }
    seen[name] = true;
    if (it->second.sizes() != target.sizes()) {
      throw CheckpointError(fmt::format("{}: tensor '{}' has shape {}, the model expects {}", source, name,
                                        it->second.sizes(), target.sizes()));
    }
    target.copy_(it->second);
    report.loaded.push_back(name);
  }
  for (const auto& [name, tensor] : tensors) {
    if (!seen.count(name)) report.unexpected.push_back(name);
  }
  if (strict && (!report.missing.empty() || !report.unexpected.empty())) {
    auto head = [](const std::vector<std::string>& v) {
      std::vector<std::string> h(v.begin(), v.begin() + std::min<size_t>(v.size(), 5));
      return fmt::format("{}{}", fmt::join(h, ", "), v.size() > 5 ? fmt::format(", … ({} in all)", v.size()) : "");
    };
    std::string msg = fmt::format("{}: does not match the model:", source);
    if (!report.missing.empty()) msg += fmt::format(" missing {}.", head(report.missing));
    if (!report.unexpected.empty()) msg += fmt::format(" unexpected {}.", head(report.unexpected));
    throw CheckpointError(msg);
  }
  return report;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace mdm
