// The fused path against the unfused ops on a device, once per device and dtype; see nn/fusion_check.h.
#include <mdm/nn/folded_group_norm.h>
#include <mdm/nn/fusion_check.h>
#include <mdm/nn/pointwise.h>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#if MDM_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#endif

namespace mdm::nn {

namespace {

// (device type, device index, dtype): asked on every large activation's forward, so no string is built.
using Key = std::tuple<int, int, int>;
std::mutex g_mutex;
std::map<Key, FusionCheck> g_results;

// "cuda" names the current CUDA device: the check's results are kept per indexed device, as tensors
// report theirs.
torch::Device indexed(const torch::Device& device) {
#if MDM_WITH_CUDA
  if (device.is_cuda() && !device.has_index()) return {torch::kCUDA, c10::cuda::current_device()};
#endif
  return device;
}

Key key(const torch::Device& device, torch::ScalarType dtype) {
  const auto d = indexed(device);
  return {static_cast<int>(d.type()), static_cast<int>(d.index()), static_cast<int>(dtype)};
}

bool capturing(const torch::Device& device) {
#if MDM_WITH_CUDA
  if (device.is_cuda()) {
    c10::DeviceGuard guard(device);
    return c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None;
  }
#endif
  (void)device;
  return false;
}

bool low_precision(torch::ScalarType dtype) { return dtype == torch::kBFloat16 || dtype == torch::kHalf; }

// ‖actual − exact‖ / ‖exact‖, on the CPU in float64.
double relative_error(const torch::Tensor& actual, const torch::Tensor& exact) {
  const auto a = actual.detach().cpu().to(torch::kDouble), e = exact.detach().cpu().to(torch::kDouble);
  TORCH_CHECK(a.sizes() == e.sizes(), "shape ", a.sizes(), " where the unfused ops give ", e.sizes());
  const double norm = e.norm().item<double>();
  const double diff = (a - e).norm().item<double>();
  return norm > 0 ? diff / norm : diff;
}

struct Comparison {
  double worst = 0;
  std::string worst_name, failure;
  double tolerance = 0;
  void add(const std::string& name, const torch::Tensor& actual, const torch::Tensor& exact) {
    if (!actual.defined()) {
      if (failure.empty()) failure = fmt::format("{}: no gradient", name);
      return;
    }
    const double e = relative_error(actual, exact);
    if (!(e <= tolerance) && failure.empty()) {  // a NaN fails too
      failure = fmt::format("{} is off by {:.3g} (relative; tolerance {:.0e})", name, e, tolerance);
    }
    if (!(e <= worst)) {
      worst = e;
      worst_name = name;
    }
  }
};

// The inputs, drawn from a generator of their own (the caller's random streams stay as they were), with
// channel means ~4 standard deviations from zero, where a form that did not centre first would cancel.
struct Inputs {
  static constexpr int64_t B = 2, C = 32, G = 8, H = 12, W = 12;
  torch::Tensor h, bias, weight, beta, scale, shift, dy, residual;
};

Inputs draw_inputs(torch::ScalarType dtype) {
  auto gen = at::detail::createCPUGenerator(20261127);
  const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  auto randn = [&](std::vector<int64_t> shape) { return at::randn(shape, gen, f64); };
  constexpr int64_t B = Inputs::B, C = Inputs::C, H = Inputs::H, W = Inputs::W;
  // Rounded to the dtypes training gives them: activations and time-embedding outputs in `dtype`, the
  // module's parameters in float32. The exact side computes on these same rounded values.
  auto act = [&](const torch::Tensor& t) { return t.to(dtype).to(torch::kDouble); };
  auto param = [&](const torch::Tensor& t) { return t.to(torch::kFloat).to(torch::kDouble); };
  Inputs in;
  in.h = act(randn({B, C, H, W}) + 4 * randn({B, C, 1, 1}));
  in.bias = param(randn({C}));
  in.weight = param(1 + 0.5 * randn({C}));
  in.beta = param(0.5 * randn({C}));
  in.scale = act(1 + 0.5 * randn({B, C, 1, 1}));
  in.shift = act(0.5 * randn({B, C, 1, 1}));
  in.dy = act(randn({B, C, H, W}));
  in.residual = act(randn({B, C, H, W}));
  return in;
}

FusionCheck run_check(const torch::Device& device, torch::ScalarType dtype) {
  // The caller may be inside a forward with autograd off, under autocast or in inference mode: none of it
  // applies here.
  c10::InferenceMode not_inference(false);
  torch::AutoGradMode grad(true);
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  c10::DeviceGuard device_guard(device);
  constexpr int64_t C = Inputs::C, G = Inputs::G;
  const double eps = 1e-5;

  FusionCheck result;
  result.ran = true;
  Comparison cmp;
  cmp.tolerance = result.tolerance = low_precision(dtype) ? 3e-2 : 1e-4;
  try {
    const Inputs in = draw_inputs(dtype);
    const auto dev = [&](const torch::Tensor& t, torch::ScalarType type) {
      return t.to(device, type).detach().requires_grad_(true);
    };
    const auto param_type = low_precision(dtype) ? torch::kFloat : dtype;

    // GroupNorm(h + bias) → ·scale + shift → SiLU, then + conv bias + residual: unfused, float64, CPU.
    torch::nn::GroupNorm exact_norm(torch::nn::GroupNormOptions(G, C).eps(eps));
    exact_norm->to(torch::kDouble);
    torch::nn::GroupNorm norm(torch::nn::GroupNormOptions(G, C).eps(eps));
    {
      torch::NoGradGuard no_grad;
      exact_norm->weight.copy_(in.weight);
      exact_norm->bias.copy_(in.beta);
      norm->to(device, param_type);
      norm->weight.copy_(in.weight);
      norm->bias.copy_(in.beta);
    }
    auto e_h = in.h.clone().requires_grad_(true), e_bias = in.bias.clone().requires_grad_(true);
    auto e_scale = in.scale.clone().requires_grad_(true), e_shift = in.shift.clone().requires_grad_(true);
    auto e_res = in.residual.clone().requires_grad_(true);
    const auto e_y = torch::silu(exact_norm(e_h + e_bias.view({1, C, 1, 1})) * e_scale + e_shift);
    const auto e_out = e_y + e_bias.view({1, C, 1, 1}) + e_res;  // add_bias_residual's op, same bias
    torch::autograd::backward({e_y, e_out}, {in.dy, in.dy});

    // The fused path on the device, in dtype.
    auto h = dev(in.h, dtype), bias = dev(in.bias, param_type), scale = dev(in.scale, dtype);
    auto shift = dev(in.shift, dtype), res = dev(in.residual, dtype);
    const auto y = folded_group_norm_silu(h, norm, bias, scale, shift);
    const auto out = add_bias_residual(y, bias, res);
    const auto dy = in.dy.to(device, dtype);
    torch::autograd::backward({y, out}, {dy, dy});

    cmp.add("the output", y, e_y);
    cmp.add("bias + residual", out, e_out);
    cmp.add("the input's gradient", h.grad(), e_h.grad());
    cmp.add("the convolution bias's gradient", bias.grad(), e_bias.grad());
    cmp.add("the norm weight's gradient", norm->weight.grad(), exact_norm->weight.grad());
    cmp.add("the norm bias's gradient", norm->bias.grad(), exact_norm->bias.grad());
    cmp.add("the scale's gradient", scale.grad(), e_scale.grad());
    cmp.add("the shift's gradient", shift.grad(), e_shift.grad());
    cmp.add("the residual's gradient", res.grad(), e_res.grad());
  } catch (const c10::Error& e) {
    cmp.failure = fmt::format("it threw: {}", e.what_without_backtrace());
  } catch (const std::exception& e) {
    cmp.failure = fmt::format("it threw: {}", e.what());
  }
  result.max_error = cmp.worst;
  result.passed = cmp.failure.empty() && pointwise_backend(torch::empty({0}, torch::TensorOptions().device(device))) ==
                                             (device.is_cuda() ? std::string("jiterator") : std::string("aten"));
  if (cmp.failure.empty() && !result.passed) {
    const auto why = jiterator_failure();
    cmp.failure = why.empty() ? "this build has no fused CUDA kernels (no jiterator)"
                              : fmt::format("its kernels fell back to ATen's ops ({})", why);
  }
  result.detail = result.passed ? fmt::format("worst: {}", cmp.worst_name) : cmp.failure;
  return result;
}

}  // namespace

namespace {

// The recorded result, the check run first where there is none; nullptr during CUDA graph capture. Called
// with g_mutex held (one check at a time; other threads wait for its result). std::map keeps the element
// where it is, so the pointer stays valid.
const FusionCheck* recorded_or_checked(const torch::Device& device_in, torch::ScalarType dtype) {
  const torch::Device device = indexed(device_in);
  const auto k = key(device, dtype);
  if (const auto it = g_results.find(k); it != g_results.end()) return &it->second;
  if (capturing(device)) return nullptr;
  FusionCheck result = run_check(device, dtype);
  if (result.passed) {
    spdlog::info("fused GroupNorm → scale-shift → SiLU path on {} in {}: {}", device.str(), c10::toString(dtype),
                 to_string(result));
  } else {
    spdlog::warn("the fused GroupNorm → scale-shift → SiLU path failed its check on {} in {} and stays off there "
                 "(the unfused ops run instead): {}",
                 device.str(), c10::toString(dtype), result.detail);
  }
  return &(g_results[k] = std::move(result));
}

}  // namespace

FusionCheck check_fusion(const torch::Device& device, torch::ScalarType dtype) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const FusionCheck* result = recorded_or_checked(device, dtype);
  return result ? *result : FusionCheck{};
}

bool fusion_verified(const torch::Device& device, torch::ScalarType dtype) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const FusionCheck* result = recorded_or_checked(device, dtype);
  return result && result->passed;
}

FusionCheck fusion_check_result(const torch::Device& device, torch::ScalarType dtype) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const auto it = g_results.find(key(device, dtype));
  return it == g_results.end() ? FusionCheck{} : it->second;
}

std::string to_string(const FusionCheck& check) {
  if (!check.ran) return "not run";
  if (!check.passed) return "failed: " + check.detail;
  return fmt::format("passed (max relative error {:.1e} of {:.0e}; {})", check.max_error, check.tolerance,
                     check.detail);
}

}  // namespace mdm::nn
