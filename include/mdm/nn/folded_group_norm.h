// GroupNorm → scale-shift → SiLU for inference, as two passes over the activation instead of five to
// seven. The norm's statistics are computed per (sample, channel) and combined per group (Chan's
// parallel variance), which lets the bias of the convolution before the norm be added to the channel
// means instead of to every element. Norm, affine, time scale-shift and that bias then fold into one
// multiply-add per (sample, channel), y = silu(h·a + b), one fused kernel on CUDA (nn/pointwise.h).
//
// Numerics: the statistics are float32, as ATen's GroupNorm accumulates them. Where the multiply-add
// runs in bf16 (ATen's fallback), a and b are rounded to bf16; their error is then of the order of the
// rounding the bf16 input already carries (|b| ≤ ~|group mean|·a), and the output is rounded to bf16
// either way.
//
// Forward only (autograd needs the unfused ops): the UNet's ResNets take this path when autograd is off,
// as inference_fusion_plan() says.
#pragma once

#include <torch/torch.h>

#include <utility>

namespace mdm::nn {

// Process-wide: when modules fuse their inference ops. Auto (the default) fuses large contiguous CUDA
// activations, Off never (mdm-bench --unfused-inference), Always wherever autograd is off (tests: every
// fused branch on the CPU). Auto leaves the CPU alone: there ATen's GroupNorm normalises a group while it
// is still in cache, oneDNN adds a convolution's bias inside the convolution, and the folded form
// measured 4-6 % slower (docs/benchmarks.md).
enum class InferenceFusion { Off, Auto, Always };
void set_inference_fusion(InferenceFusion fusion);
InferenceFusion inference_fusion();

// Below this many elements an activation is not worth fusing: the ~15 small ops on [B, C] statistics that
// replace passes over it cost launches of their own (8M elements are 16 MB in bf16, a pass ~5 µs of
// H100 bandwidth).
constexpr int64_t kFusionMinElements = int64_t{1} << 23;

// What a module does with its activation x under the current setting. All false while autograd is on.
struct FusionPlan {
  bool active = false;         // norm → scale-shift → SiLU as folded_group_norm_silu()
  bool fold_bias = false;      // convolutions run without their bias (cuDNN adds it in a pass of its own),
                               // which goes into what follows them
  bool fused_kernels = false;  // the pointwise ops that only pay as one kernel (nn/pointwise.h) replace
                               // ATen's: the first norm and SiLU, and bias + residual
};
FusionPlan inference_fusion_plan(const torch::Tensor& x);

// Mean and biased variance of x [B, C, ...] over everything after the channel dimension, float32 [B, C].
std::pair<torch::Tensor, torch::Tensor> channel_moments(const torch::Tensor& x);

// silu(norm(h + bias)·scale + shift) for h [B, C, ...] in h's dtype. bias: [C], the bias of the
// convolution that produced h, which then ran without it. scale, shift: B·C values ([B, C, 1, 1] from a
// time embedding). Each may be undefined (no bias, scale 1, shift 0).
torch::Tensor folded_group_norm_silu(const torch::Tensor& h, const torch::nn::GroupNorm& norm,
                                     const torch::Tensor& bias = {}, const torch::Tensor& scale = {},
                                     const torch::Tensor& shift = {});

}  // namespace mdm::nn
