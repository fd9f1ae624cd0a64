// GroupNorm under mixed precision. CUDA autocast runs group_norm in float32: its bf16 input is copied
// to float32, normalised, and the float32 output (and the SiLU after it) copied back to bf16 for the next
// convolution. At 256² those casts and the float32 norms are a third of the reference's forward GPU time
// (21 % in copy_, 14 % in group_norm; H200 profile, docs/benchmarks.md). group_norm() below runs the norm
// in the autocast dtype instead. The price is in the statistics, not only the output: ATen's CUDA kernel
// accumulates them in float32 but stores the mean and 1/std in the input's dtype (it has no float32
// statistics for a bf16 input, and no float32 weight either), so the normalised output is off by up to
// ~|mean|/std · 2⁻⁸ of a standard deviation where a group's mean is far from zero, besides its own bf16
// rounding. Large ResNet activations on CUDA take the fused path instead (nn/folded_group_norm.h, float32
// statistics); this applies to the smaller ones and the attention blocks' norms.
#pragma once

#include <torch/torch.h>

namespace mdm::nn {

// Process-wide switch (default on): whether group_norm() runs in the autocast dtype under CUDA autocast.
// Off gives autocast's float32 GroupNorm, the reference's numerics (mdm-bench --fp32-norms).
void set_low_precision_group_norm(bool enabled);
bool low_precision_group_norm();

// `norm` applied to x [B, C, ...]. Outside CUDA autocast, or with the switch off, this is norm(x).
torch::Tensor group_norm(const torch::nn::GroupNorm& norm, const torch::Tensor& x);

// The norm computed in `dtype` with autocast out of the way: x, weight and bias cast to `dtype` (the
// casts are differentiable, so the float32 parameters get their gradients), statistics as ATen
// accumulates them. What group_norm() runs under bf16 autocast; public for tests on the CPU.
torch::Tensor group_norm_in(const torch::nn::GroupNorm& norm, const torch::Tensor& x, torch::ScalarType dtype);

}  // namespace mdm::nn
