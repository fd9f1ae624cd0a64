// Fused elementwise kernels for the inference path of the UNet. At 256² the network's time goes mostly to
// memory traffic, not to the matrix units (docs/benchmarks.md: in the reference's forward, GroupNorm, its
// casts, the convolution bias add_ and the other elementwise ops are 60 % of the GPU time). Each function
// below is one pass over its full-size operands where ATen needs two or three. On CUDA they run as kernels
// compiled at run time by LibTorch's jiterator (NVRTC); elsewhere, or when that compilation fails (logged
// once, then never tried again), as the ATen ops they replace. Forward only: they are called under no-grad.
#pragma once

#include <torch/torch.h>

#include <string>

namespace mdm::nn {

// y = silu(x·a + b) in x's dtype, a and b broadcasting against x ([B, C, 1, 1]) and rounded to x's dtype,
// the arithmetic in float32.
torch::Tensor scale_shift_silu(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& b);

// y = x + bias + residual (bias [C] broadcast over [B, C, ...]), in the dtype x + residual would have.
torch::Tensor add_bias_residual(const torch::Tensor& x, const torch::Tensor& bias, const torch::Tensor& residual);

// How the two functions above run on tensors like x: "jiterator" (one fused CUDA kernel) or "aten".
std::string pointwise_backend(const torch::Tensor& x);

// Why the jiterator was given up on in this process ("" while it works or was never tried).
std::string jiterator_failure();

}  // namespace mdm::nn
