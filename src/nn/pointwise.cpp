#include <mdm/nn/pointwise.h>

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>

#if MDM_WITH_CUDA
#include <ATen/jit_macros.h>
#if AT_USE_JITERATOR()
#include <ATen/cuda/jiterator.h>
#define MDM_JITERATOR 1
#endif
#endif
#ifndef MDM_JITERATOR
#define MDM_JITERATOR 0
#endif

namespace mdm::nn {

namespace {

std::atomic<bool> g_jiterator_failed{false};
std::mutex g_failure_mutex;
std::string g_failure;

#if MDM_JITERATOR
// The jiterator allocates the output in the inputs' common dtype, so every input comes in x's dtype (a bf16
// activation gets a bf16 output); the functions compute in float32 whatever type they are instantiated at.
const std::string kScaleShiftSilu = R"(template <typename T> T mdm_scale_shift_silu(T x, T a, T b) {
  const float z = static_cast<float>(x) * static_cast<float>(a) + static_cast<float>(b);
  return static_cast<T>(z / (1.0f + expf(-z)));
})";
const std::string kAddBiasResidual = R"(template <typename T> T mdm_add_bias_residual(T x, T bias, T residual) {
  return static_cast<T>(static_cast<float>(x) + static_cast<float>(bias) + static_cast<float>(residual));
})";

// One jitted kernel's output (its inputs broadcast as ATen's ops broadcast); undefined, and the jiterator
// switched off for the process, if it cannot be compiled or launched.
torch::Tensor launch(const std::string& code, const std::string& name, std::initializer_list<torch::Tensor> inputs) {
  if (g_jiterator_failed) return {};
  const c10::SmallVector<at::Tensor> tensors(inputs.begin(), inputs.end());
  try {
    // return_by_ref is the form of the function (outputs as reference arguments), not an output buffer.
    return at::cuda::CompileAndLaunchKernel(code, name, /*num_outputs=*/1, tensors, /*extra_args=*/{},
                                            /*return_by_ref=*/false)[0];
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(g_failure_mutex);
    if (!g_jiterator_failed.exchange(true)) {
      g_failure = fmt::format("{}: {}", name, e.what());
      spdlog::warn("fused CUDA kernels unavailable, using ATen's ops instead ({})", g_failure);
    }
    return {};
  }
}
#endif

bool use_jiterator(const torch::Tensor& x) { return MDM_JITERATOR && x.is_cuda() && !g_jiterator_failed; }

}  // namespace

torch::Tensor scale_shift_silu(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& b) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  // a and b rounded to x's dtype: their error is of the order of x's own rounding (nn/folded_group_norm.h).
  const auto xa = a.to(x.scalar_type()), xb = b.to(x.scalar_type());
#if MDM_JITERATOR
  if (use_jiterator(x)) {
    if (auto y = launch(kScaleShiftSilu, "mdm_scale_shift_silu", {x, xa, xb}); y.defined()) return y;
  }
#endif
  auto y = torch::addcmul(xb, x, xa);
  return torch::silu_(y);
}

torch::Tensor add_bias_residual(const torch::Tensor& x, const torch::Tensor& bias, const torch::Tensor& residual) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  TORCH_CHECK(bias.dim() == 1 && x.dim() >= 2 && bias.size(0) == x.size(1), "add_bias_residual: bias of shape ",
              bias.sizes(), " for x of shape ", x.sizes());
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = bias.size(0);
  const auto b = bias.view(shape);
#if MDM_JITERATOR
  if (use_jiterator(x)) {
    const auto dtype = torch::result_type(x, residual);
    auto y = launch(kAddBiasResidual, "mdm_add_bias_residual", {x.to(dtype), b.to(dtype), residual.to(dtype)});
    if (y.defined()) return y;
  }
#endif
  // What a convolution with its bias followed by the residual add computes.
  return (x + b.to(x.scalar_type())) + residual;
}

std::string pointwise_backend(const torch::Tensor& x) { return use_jiterator(x) ? "jiterator" : "aten"; }

std::string jiterator_failure() {
  std::lock_guard<std::mutex> lock(g_failure_mutex);
  return g_failure;
}

}  // namespace mdm::nn
