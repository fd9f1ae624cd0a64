// Every difference between LibTorch 1.13 (Debian, CPU) and LibTorch 2.x (the GPU machine) lives here.
// Nothing else in libmdm may test TORCH_VERSION_*.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <optional>
#include <utility>
#include <vector>

#if TORCH_VERSION_MAJOR >= 2
#define MDM_TORCH2 1
#else
#define MDM_TORCH2 0
#endif

namespace mdm::compat {

// Scaled dot-product attention on q [B, H, Lq, D], k/v [B, H, Lk, D]; keep_mask (optional, bool
// [B, Lk]) is true where a key takes part. Scale 1/sqrt(D), as the reference's D^-1/4 on q and k.
// LibTorch 2.x dispatches to fused kernels (flash / memory-efficient on CUDA); 1.13 has no public
// fused op, so it runs the math with the softmax in fp32, exactly as the reference does under bf16.
inline torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v,
                                                  const std::optional<torch::Tensor>& keep_mask = {}) {
#if MDM_TORCH2
  std::optional<torch::Tensor> attn_mask;
  if (keep_mask) attn_mask = keep_mask->to(torch::kBool).view({keep_mask->size(0), 1, 1, keep_mask->size(1)});
  // The fused kernels take only inputs whose last dimension has stride 1; anything else (the UNet's q, k,
  // v are head views of a transposed convolution output) silently runs the math fallback, which keeps a
  // [B, heads, L, L] matrix per layer for backward. One copy makes them eligible.
  auto last_dim_dense = [](const torch::Tensor& t) { return t.stride(-1) == 1 ? t : t.contiguous(); };
  return at::scaled_dot_product_attention(last_dim_dense(q), last_dim_dense(k), last_dim_dense(v), attn_mask);
#else
  const double scale = 1.0 / std::sqrt(std::sqrt(static_cast<double>(q.size(-1))));
  auto weight = torch::matmul(q * scale, (k * scale).transpose(-2, -1));  // [B, H, Lq, Lk]
  if (keep_mask) {
    auto drop = keep_mask->to(torch::kBool).logical_not().view({keep_mask->size(0), 1, 1, keep_mask->size(1)});
    weight = weight.masked_fill(drop, -std::numeric_limits<float>::infinity());
  }
  weight = torch::softmax(weight.to(torch::kFloat), -1).to(v.scalar_type());
  return torch::matmul(weight, v);
#endif
}

// Nearest-neighbour ×2 upsampling. The reference interpolates in fp32 and casts back; nearest copies
// values, so on CUDA it runs in the input's dtype with autocast out of the way (same result, no casts).
// Before LibTorch 2.1 neither the CUDA kernel (forward and backward: Half and Byte only) nor the CPU one
// has bf16, so there, and on the CPU, the casts stay.
inline torch::Tensor upsample_nearest2x(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  const auto options = F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest);
  constexpr bool kBf16Kernels = TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1);
  if (kBf16Kernels && x.is_cuda()) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    return F::interpolate(x, options);
  }
  return F::interpolate(x.to(torch::kFloat), options).to(x.scalar_type());
}

// The optional tensor an autograd Function's forward takes for an input that may be absent (such an input
// gets no edge; an undefined Tensor would be taken for a variable): c10::optional before 2.4, which then
// became an alias of std::optional.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
using OptionalTensor = std::optional<torch::Tensor>;
#else
using OptionalTensor = c10::optional<torch::Tensor>;
#endif

// The dtype CUDA autocast casts to when it is enabled on this thread; empty when it is not.
inline std::optional<at::ScalarType> cuda_autocast_dtype() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  if (!at::autocast::is_autocast_enabled(at::kCUDA)) return std::nullopt;
  return at::autocast::get_autocast_dtype(at::kCUDA);
#else
  if (!at::autocast::is_enabled()) return std::nullopt;
  return at::autocast::get_autocast_gpu_dtype();
#endif
}

// Mixed precision for a scope: CUDA autocast to `dtype` (bf16 for training, reference-facts.md §8) when
// `enabled`; restores the previous state and clears the autocast weight cache on exit.
class CudaAutocast {
 public:
  CudaAutocast(bool enabled, at::ScalarType dtype) : enabled_(enabled) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    prev_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    prev_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
    prev_enabled_ = at::autocast::is_enabled();
    prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
#endif
    at::autocast::increment_nesting();
  }
  ~CudaAutocast() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, prev_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, prev_dtype_);
#else
    at::autocast::set_enabled(prev_enabled_);
    at::autocast::set_autocast_gpu_dtype(prev_dtype_);
#endif
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool enabled_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kHalf;
};

// Whether fused_adam_step has a kernel for tensors on `device`.
inline bool fused_adam_available(const torch::Device& device) {
  constexpr bool kCudaKernel = MDM_TORCH2 != 0;
  constexpr bool kCpuKernel = TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4);
  return (kCudaKernel && device.is_cuda()) || (kCpuKernel && device.is_cpu());
}

// torch.optim.Adam(fused=True)'s kernel: one pass that reads parameters, gradients and both moments and
// writes back parameters and moments (28 bytes per float32 parameter; the _foreach_ sequence moves ~84).
// LibTorch has it from 2.0 on CUDA and from 2.4 on the CPU; where it has none this returns false and the
// caller runs the _foreach_ ops. All tensors on one device, one dtype; `step` is the step count after this
// update (the bias corrections), the same for every tensor; `decoupled` selects AdamW's weight decay.
inline bool fused_adam_step(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& grads,
                            const std::vector<torch::Tensor>& exp_avgs, const std::vector<torch::Tensor>& exp_avg_sqs,
                            int64_t step, double lr, double beta1, double beta2, double weight_decay, double eps,
                            bool decoupled) {
#if MDM_TORCH2
  if (params.empty()) return true;
  const auto device = params.front().device();
  if (!fused_adam_available(device)) return false;
  // The kernel reads the step from a float32 tensor on the device (a fill, not a host copy); one tensor serves
  // the whole list.
  const auto count = torch::full({}, static_cast<double>(step), torch::TensorOptions().dtype(torch::kFloat).device(device));
  const std::vector<torch::Tensor> steps(params.size(), count);
  const std::vector<torch::Tensor> no_max_exp_avg_sqs;  // amsgrad off
  if (decoupled) {
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, no_max_exp_avg_sqs, steps, lr, beta1, beta2, weight_decay, eps,
                      /*amsgrad=*/false, /*maximize=*/false);
  } else {
    at::_fused_adam_(params, grads, exp_avgs, exp_avg_sqs, no_max_exp_avg_sqs, steps, lr, beta1, beta2, weight_decay, eps,
                     /*amsgrad=*/false, /*maximize=*/false);
  }
  return true;
#else
  return false;
#endif
}

// A profiler event's start and duration in microseconds (torch::autograd::profiler::KinetoEvent; a template,
// so that this header need not include the profiler's). LibTorch 1.13 has startUs()/durationUs(), 2.x
// startNs()/durationNs() in their place: the overload that compiles is taken.
namespace detail {
template <class Event>
auto event_times_us(const Event& e, int /*preferred*/) -> decltype(e.startNs(), std::pair<double, double>()) {
  return {static_cast<double>(e.startNs()) / 1e3, static_cast<double>(e.durationNs()) / 1e3};
}
template <class Event>
auto event_times_us(const Event& e, long /*fallback*/) -> decltype(e.startUs(), std::pair<double, double>()) {
  return {static_cast<double>(e.startUs()), static_cast<double>(e.durationUs())};
}
}  // namespace detail
template <class Event>
std::pair<double, double> profiler_event_times_us(const Event& e) {
  return detail::event_times_us(e, 0);
}

}  // namespace mdm::compat
