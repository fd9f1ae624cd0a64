#include <mdm/perf/cpu_conv_check.h>
#include <mdm/util/error.h>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace mdm::perf {

double cpu_convolution_error() {
  torch::NoGradGuard no_grad;
  // Fixed inputs from a private generator: the check neither depends on nor moves the global seed.
  auto gen = at::detail::createCPUGenerator(20261126);
  double worst = 0.0;
  // in, out, spatial size: the shapes that Debian 13's LibTorch 2.6 gets wrong, and one it gets right.
  static constexpr std::array<std::array<int64_t, 3>, 4> kShapes{{{40, 8, 8}, {40, 32, 4}, {24, 16, 8}, {64, 32, 4}}};
  for (const auto& s : kShapes) {
    auto x = at::randn({2, s[0], s[2], s[2]}, gen, torch::kFloat);
    auto w = at::randn({s[1], s[0], 3, 3}, gen, torch::kFloat) * (1.0 / std::sqrt(9.0 * s[0]));
    auto b = at::randn({s[1]}, gen, torch::kFloat);
    auto y = torch::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);
    auto y64 = torch::conv2d(x.to(torch::kDouble), w.to(torch::kDouble), b.to(torch::kDouble), 1, 1);
    const double err = (y.to(torch::kDouble) - y64).abs().max().item<double>();
    if (!std::isfinite(err)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, err);
  }
  return worst;
}

CpuConvCheck ensure_correct_cpu_convolutions(double tolerance) {
  CpuConvCheck r;
  r.error_before = cpu_convolution_error();
  r.error_after = r.error_before;
  if (r.error_before <= tolerance) return r;
  auto& ctx = at::globalContext();
  if (ctx.userEnabledMkldnn()) {
    ctx.setUserEnabledMkldnn(false);
    r.onednn_disabled = true;
    r.error_after = cpu_convolution_error();
  }
  if (r.error_after > tolerance) {
    throw Error(fmt::format(
        "this LibTorch's CPU convolutions are wrong: a float32 3x3 convolution misses float64 by {:.3g} (allowed {:.1g}){}; "
        "results would be garbage. Use another LibTorch build (docs/architecture.md, \"Checking LibTorch 2.x without a GPU\")",
        r.error_after, tolerance, r.onednn_disabled ? ", also with oneDNN switched off" : ""));
  }
  spdlog::warn(
      "this LibTorch's oneDNN gives wrong CPU convolutions (a 3x3 convolution misses float64 by {:.3g}); oneDNN is "
      "switched off for this process and LibTorch's own kernels are right ({:.2g}). Known for Debian 13's PyTorch 2.6 "
      "with oneDNN 3.7 on AVX2/AVX-512 (docs/architecture.md)",
      r.error_before, r.error_after);
  return r;
}

}  // namespace mdm::perf
