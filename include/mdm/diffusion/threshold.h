// Thresholding of the predicted x0 at every sampling step (formulas.md; MDM Appendix C uses dynamic):
//   clip        clamp(x0, −1, 1)
//   dynamic     Imagen: q = quantile(|x0|, p) per sample over C·H·W, clamped to [1, max];
//               x0 = clamp(x0, −q, q) / q        (p = 0.995, max = 100)
//   dynamic-if  the same with DeepFloyd IF's values (p = 0.95, max = 1.5)
//   none
#pragma once

#include <torch/torch.h>

#include <string>

namespace mdm {

struct ThresholdOptions {
  std::string kind = "dynamic";  // clip | dynamic | dynamic-if | none
  double percentile = 0.995;
  double max_value = 100.0;

  // The named preset: dynamic → (0.995, 100), dynamic-if → (0.95, 1.5). Throws ConfigError on a bad name.
  static ThresholdOptions preset(const std::string& kind);
};

// x0: [B, ...]; the quantile is taken per sample in fp32.
torch::Tensor apply_threshold(const torch::Tensor& x0, const ThresholdOptions& options);

}  // namespace mdm
