// GroupNorm → scale-shift → SiLU as two passes over the activation instead of five to seven, forward and
// backward. The norm's statistics are computed per (sample, channel) and combined per group (Chan's
// parallel variance), which lets the bias of the convolution before the norm be added to the channel
// means instead of to every element. Norm, affine, time scale-shift and that bias then fold into one
// centre and one multiply-add per (sample, channel), y = silu((h − centre)·a + b), one fused kernel on CUDA
// (nn/pointwise.h).
//
// The backward is three passes over h instead of the unfused ops' ~16 (docs/benchmarks.md): dz = dy·silu'
// (one kernel), the per-(sample, channel) sums Σdz and Σdz·(h − mean) (SyncBatchNorm's backward-reduce
// kernel on CUDA), and dh = dz·α + (h − centre)·β + γ with α, β, γ per (sample, channel) (one kernel).
// Every other gradient (convolution bias, GroupNorm affine, scale, shift) comes from those sums on [B, C]
// values. For backward it keeps h alone, where the unfused ops keep the norm's input, its output and the
// SiLU's input.
//
// Numerics: the statistics are float32, as ATen's GroupNorm accumulates them, and the kernels form h −
// centre in float32 before anything multiplies it (the centre to ~16 bits in bf16), so a channel far from
// zero loses nothing to cancellation; a, b, α, β, γ are rounded to h's dtype, an error of the order of the
// output's own rounding.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

namespace mdm::nn {

// Process-wide: when modules take the fused path, set separately for inference (autograd off) and
// training. Auto (the default) fuses large contiguous CUDA activations, Off never (mdm-bench
// --inference-fusion off, --training-fusion off), Always everywhere (tests: every fused branch on the CPU).
// Auto leaves the CPU alone: there ATen's GroupNorm normalises a group while it is still in cache, oneDNN
// adds a convolution's bias inside the convolution, and the folded form measured slower
// (docs/benchmarks.md). On CUDA, Auto also needs the fused kernels (nn/pointwise.h): without them their
// ATen stand-ins would cost more passes than the unfused ops; and a passed check of the fused path against
// the unfused ops on that device and dtype (nn/fusion_check.h, run the first time it is asked).
enum class Fusion { Off, Auto, Always };
void set_inference_fusion(Fusion fusion);
Fusion inference_fusion();
void set_training_fusion(Fusion fusion);
Fusion training_fusion();
// "off", "auto", "always" (flags and JSON).
std::string to_string(Fusion fusion);
Fusion parse_fusion(const std::string& name);  // throws std::invalid_argument naming the bad value

// Below this many elements an activation is not worth fusing: the ~15 small ops on [B, C] statistics that
// replace passes over it (~25 in backward) cost launches of their own (8M elements are 16 MB in bf16, a
// pass ~5 µs of H100 bandwidth).
constexpr int64_t kFusionMinElements = int64_t{1} << 23;

// What a module does with its activation x under the current settings (inference's while autograd is off,
// training's while it is on).
struct FusionPlan {
  bool active = false;         // norm → scale-shift → SiLU as folded_group_norm_silu()
  bool fold_bias = false;      // convolutions run without their bias (cuDNN adds it in a pass of its own),
                               // which goes into what follows them
  bool fused_kernels = false;  // the pointwise ops that only pay as one kernel (nn/pointwise.h) replace
                               // ATen's: the first norm and SiLU, and bias + residual
};
FusionPlan fusion_plan(const torch::Tensor& x);

// x is a 4-D activation in channels-last memory format (and not also contiguous, as a 1×1 image is).
// Auto fuses such activations in inference (the statistics in one kernel per sample), not in training.
bool channels_last(const torch::Tensor& x);

// Mean and biased variance of x [B, C, ...] over everything after the channel dimension, [B, C] in float32
// (float64 for a float64 x).
std::pair<torch::Tensor, torch::Tensor> channel_moments(const torch::Tensor& x);

// Σ dz and Σ dz·(x − mean) over everything after the channel dimension of dz and x [B, C, ...] (same
// shape and dtype), given mean [B, C] from channel_moments(x): [B, C] each, in mean's dtype. On CUDA with
// bf16 or half inputs, ATen's kernel rounds the terms and its partial sums to the inputs' dtype: the sums
// are good to ~0.5 %, about one bf16 rounding (docs/benchmarks.md, "third H200 session").
std::pair<torch::Tensor, torch::Tensor> channel_gradient_sums(const torch::Tensor& dz, const torch::Tensor& x,
                                                              const torch::Tensor& mean);

// silu(norm(h + bias)·scale + shift) for h [B, C, ...] in h's dtype. bias: [C], the bias of the
// convolution that produced h, which then ran without it. scale, shift: B·C values ([B, C, 1, 1] from a
// time embedding). Each may be undefined (no bias, scale 1, shift 0). Differentiable in h, bias, the
// norm's weight and bias, scale and shift; with autograd off it keeps nothing for backward.
torch::Tensor folded_group_norm_silu(const torch::Tensor& h, const torch::nn::GroupNorm& norm,
                                     const torch::Tensor& bias = {}, const torch::Tensor& scale = {},
                                     const torch::Tensor& shift = {});

}  // namespace mdm::nn
