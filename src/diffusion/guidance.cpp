#include <mdm/diffusion/guidance.h>
#include <mdm/util/error.h>

#include <fmt/format.h>

namespace mdm {

double guidance_weight(const std::string& form, double scale) {
  if (form == "cfg") return scale;
  if (form == "uvit") return 1.0 + scale;
  throw ConfigError(fmt::format("guidance form '{}' is not known (cfg | uvit)", form));
}

std::vector<torch::Tensor> duplicate_batch(const std::vector<torch::Tensor>& levels) {
  std::vector<torch::Tensor> out;
  out.reserve(levels.size());
  for (const auto& x : levels) out.push_back(torch::cat({x, x}, 0));
  return out;
}

std::vector<torch::Tensor> combine_guidance(const std::vector<torch::Tensor>& outputs, double scale) {
  std::vector<torch::Tensor> out;
  out.reserve(outputs.size());
  for (const auto& o : outputs) {
    auto halves = o.chunk(2, 0);
    if (scale == 1.0) {
      out.push_back(halves[1]);  // exactly the conditional output
    } else if (scale == 0.0) {
      out.push_back(halves[0]);  // exactly the unconditional output
    } else {
      out.push_back(halves[0] + scale * (halves[1] - halves[0]));
    }
  }
  return out;
}

}  // namespace mdm
