#include <mdm/diffusion/threshold.h>
#include <mdm/util/error.h>

#include <fmt/format.h>

namespace mdm {

ThresholdOptions ThresholdOptions::preset(const std::string& kind) {
  ThresholdOptions o;
  o.kind = kind;
  if (kind == "dynamic-if") {
    o.percentile = 0.95;
    o.max_value = 1.5;
  } else if (kind != "dynamic" && kind != "clip" && kind != "none") {
    throw ConfigError(fmt::format("threshold '{}' is not known (clip | dynamic | dynamic-if | none)", kind));
  }
  return o;
}

torch::Tensor apply_threshold(const torch::Tensor& x0, const ThresholdOptions& o) {
  if (o.kind == "none") return x0;
  if (o.kind == "clip") return x0.clamp(-1.0, 1.0);
  if (o.kind != "dynamic" && o.kind != "dynamic-if") {
    throw ConfigError(fmt::format("threshold '{}' is not known (clip | dynamic | dynamic-if | none)", o.kind));
  }
  const auto flat = x0.to(torch::kFloat).reshape({x0.size(0), -1});  // quantile needs fp32 or fp64
  auto q = torch::quantile(flat.abs(), o.percentile, /*dim=*/1, /*keepdim=*/true).clamp(1.0, o.max_value);  // [B, 1]
  auto out = torch::max(torch::min(flat, q), -q) / q;
  return out.reshape(x0.sizes()).to(x0.scalar_type());
}

}  // namespace mdm
