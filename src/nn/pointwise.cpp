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
// x − centre is (x − centre_hi) − centre_lo: the first difference is exact where x is near the centre.
const std::string kScaleShiftSilu = R"(template <typename T> T mdm_scale_shift_silu(T x, T c_hi, T c_lo, T a, T b) {
  const float u = static_cast<float>(x) - static_cast<float>(c_hi) - static_cast<float>(c_lo);
  const float z = u * static_cast<float>(a) + static_cast<float>(b);
  return static_cast<T>(z / (1.0f + expf(-z)));
})";
const std::string kAddBiasResidual = R"(template <typename T> T mdm_add_bias_residual(T x, T bias, T residual) {
  return static_cast<T>(static_cast<float>(x) + static_cast<float>(bias) + static_cast<float>(residual));
})";
// silu'(z) = σ(z)·(1 + z·(1 − σ(z))).
const std::string kScaleShiftSiluBackward =
    R"(template <typename T> T mdm_scale_shift_silu_backward(T dy, T x, T c_hi, T c_lo, T a, T b) {
  const float u = static_cast<float>(x) - static_cast<float>(c_hi) - static_cast<float>(c_lo);
  const float z = u * static_cast<float>(a) + static_cast<float>(b);
  const float s = 1.0f / (1.0f + expf(-z));
  return static_cast<T>(static_cast<float>(dy) * s * (1.0f + z * (1.0f - s)));
})";
const std::string kAffineCombination = R"(template <typename T>
T mdm_affine_combination(T dz, T x, T c_hi, T c_lo, T alpha, T beta, T gamma) {
  const float u = static_cast<float>(x) - static_cast<float>(c_hi) - static_cast<float>(c_lo);
  return static_cast<T>(static_cast<float>(dz) * static_cast<float>(alpha) + u * static_cast<float>(beta) +
                        static_cast<float>(gamma));
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

// The kernels compute in float32: a float64 tensor keeps ATen's ops, which compute in float64.
bool use_jiterator(const torch::Tensor& x) {
  return MDM_JITERATOR && x.is_cuda() && x.scalar_type() != torch::kDouble && !g_jiterator_failed;
}

#if MDM_JITERATOR
// The kernels' operands in x's dtype: the centre as hi + lo, the others rounded.
struct KernelOperands {
  torch::Tensor centre_hi, centre_lo;
  std::vector<torch::Tensor> rounded;
};
KernelOperands kernel_operands(const torch::Tensor& x, const torch::Tensor& centre,
                               std::initializer_list<torch::Tensor> others) {
  const auto dtype = x.scalar_type();
  KernelOperands k;
  const auto c = centre.to(torch::kFloat);
  k.centre_hi = c.to(dtype);
  k.centre_lo = (c - k.centre_hi.to(torch::kFloat)).to(dtype);
  for (const auto& t : others) k.rounded.push_back(t.to(dtype));
  return k;
}
#endif

// (x − centre)·a + b in the stand-ins' arithmetic dtype.
torch::Tensor pre_activation(const torch::Tensor& x, const torch::Tensor& centre, const torch::Tensor& a,
                             const torch::Tensor& b) {
  const auto op = arithmetic_dtype(x);
  return torch::addcmul(b.to(op), x.to(op) - centre.to(op), a.to(op));
}

}  // namespace

torch::ScalarType arithmetic_dtype(const torch::Tensor& x) {
  return x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

torch::Tensor scale_shift_silu(const torch::Tensor& x, const torch::Tensor& centre, const torch::Tensor& a,
                               const torch::Tensor& b) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
#if MDM_JITERATOR
  if (use_jiterator(x)) {
    const auto k = kernel_operands(x, centre, {a, b});
    if (auto y =
            launch(kScaleShiftSilu, "mdm_scale_shift_silu", {x, k.centre_hi, k.centre_lo, k.rounded[0], k.rounded[1]});
        y.defined()) {
      return y;
    }
  }
#endif
  auto z = pre_activation(x, centre, a, b);
  return torch::silu_(z).to(x.scalar_type());
}

namespace {

torch::Tensor add_bias_residual_forward(const torch::Tensor& x, const torch::Tensor& bias,
                                        const torch::Tensor& residual) {
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

// dy goes to x and to the residual unchanged (in their dtypes), and summed per channel to the bias: what
// autograd gives the convolution bias and the residual add it replaces.
struct AddBiasResidualFunction : torch::autograd::Function<AddBiasResidualFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& bias,
                               const torch::Tensor& residual) {
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["bias_dtype"] = static_cast<int64_t>(bias.scalar_type());
    ctx->saved_data["residual_dtype"] = static_cast<int64_t>(residual.scalar_type());
    return add_bias_residual_forward(x, bias, residual);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto& dy = grads[0];
    auto dtype = [&](const char* key) { return static_cast<torch::ScalarType>(ctx->saved_data[key].toInt()); };
    torch::Tensor dx, dbias, dresidual;
    if (ctx->needs_input_grad(0)) dx = dy.to(dtype("x_dtype"));
    if (ctx->needs_input_grad(1)) {
      std::vector<int64_t> dims;
      for (int64_t d = 0; d < dy.dim(); ++d) {
        if (d != 1) dims.push_back(d);
      }
      dbias = dy.sum(dims, /*keepdim=*/false, arithmetic_dtype(dy)).to(dtype("bias_dtype"));
    }
    if (ctx->needs_input_grad(2)) dresidual = dy.to(dtype("residual_dtype"));
    return {dx, dbias, dresidual};
  }
};

}  // namespace

torch::Tensor add_bias_residual(const torch::Tensor& x, const torch::Tensor& bias, const torch::Tensor& residual) {
  if (torch::GradMode::is_enabled() && (x.requires_grad() || bias.requires_grad() || residual.requires_grad())) {
    return AddBiasResidualFunction::apply(x, bias, residual);
  }
  return add_bias_residual_forward(x, bias, residual);
}

torch::Tensor scale_shift_silu_backward(const torch::Tensor& dy, const torch::Tensor& x, const torch::Tensor& centre,
                                        const torch::Tensor& a, const torch::Tensor& b) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
#if MDM_JITERATOR
  if (use_jiterator(x)) {
    const auto k = kernel_operands(x, centre, {a, b});
    auto dz = launch(kScaleShiftSiluBackward, "mdm_scale_shift_silu_backward",
                     {dy.to(x.scalar_type()), x, k.centre_hi, k.centre_lo, k.rounded[0], k.rounded[1]});
    if (dz.defined()) return dz;
  }
#endif
  const auto z = pre_activation(x, centre, a, b);
  return at::silu_backward(dy.to(z.scalar_type()), z).to(x.scalar_type());
}

torch::Tensor affine_combination(const torch::Tensor& dz, const torch::Tensor& x, const torch::Tensor& centre,
                                 const torch::Tensor& alpha, const torch::Tensor& beta, const torch::Tensor& gamma) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  TORCH_CHECK(dz.sizes() == x.sizes() && dz.scalar_type() == x.scalar_type(), "affine_combination: dz ", dz.sizes(),
              " ", dz.scalar_type(), " and x ", x.sizes(), " ", x.scalar_type(), " differ");
#if MDM_JITERATOR
  if (use_jiterator(dz)) {
    const auto k = kernel_operands(x, centre, {alpha, beta, gamma});
    auto y = launch(kAffineCombination, "mdm_affine_combination",
                    {dz, x, k.centre_hi, k.centre_lo, k.rounded[0], k.rounded[1], k.rounded[2]});
    if (y.defined()) return y;
  }
#endif
  const auto op = arithmetic_dtype(dz);
  auto y = dz.to(op) * alpha.to(op);
  y.addcmul_(x.to(op) - centre.to(op), beta.to(op)).add_(gamma.to(op));
  return y.to(dz.scalar_type());
}

std::string pointwise_backend(const torch::Tensor& x) { return use_jiterator(x) ? "jiterator" : "aten"; }

std::string jiterator_failure() {
  std::lock_guard<std::mutex> lock(g_failure_mutex);
  return g_failure;
}

}  // namespace mdm::nn
