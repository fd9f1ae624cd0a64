// Fused elementwise kernels for the inference path of the UNet. At 256² the network's time goes mostly to
// memory traffic, not to the matrix units (docs/benchmarks.md: in the reference's forward, GroupNorm, its
// casts, the convolution bias add_ and the other elementwise ops are 60 % of the GPU time). Each function
// below is one pass over its full-size operands where ATen needs two or three. On CUDA they run as kernels
// compiled at run time by LibTorch's jiterator (NVRTC); elsewhere, or when that compilation fails (logged
// once, then never tried again), as the ATen ops they replace. All but add_bias_residual are forward-only
// building blocks (nn/folded_group_norm.h differentiates through them).
#pragma once

#include <torch/torch.h>

#include <string>

namespace mdm::nn {

// y = silu(x·a + b) in x's dtype, a and b broadcasting against x ([B, C, 1, 1]) and rounded to x's dtype,
// the arithmetic in float32.
torch::Tensor scale_shift_silu(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& b);

// The gradient of scale_shift_silu with respect to x·a + b: dy·silu'(x·a + b) in x's dtype, with a and b
// rounded as scale_shift_silu rounds them.
torch::Tensor scale_shift_silu_backward(const torch::Tensor& dy, const torch::Tensor& x, const torch::Tensor& a,
                                        const torch::Tensor& b);

// y = dz·alpha + x·beta + gamma in dz's dtype (dz and x of one shape and dtype; alpha, beta, gamma
// broadcasting against them), the arithmetic in float32. beta and gamma may cancel each other (x·beta +
// gamma = beta·(x − c)), so in a low-precision dtype each goes to the kernel as two values, hi + lo.
torch::Tensor affine_combination(const torch::Tensor& dz, const torch::Tensor& x, const torch::Tensor& alpha,
                                 const torch::Tensor& beta, const torch::Tensor& gamma);

// y = x + bias + residual (bias [C] broadcast over [B, C, ...]), in the dtype x + residual would have.
// Differentiable: dx and dresidual are dy, dbias its sum over all but the channel dimension.
torch::Tensor add_bias_residual(const torch::Tensor& x, const torch::Tensor& bias, const torch::Tensor& residual);

// How the two functions above run on tensors like x: "jiterator" (one fused CUDA kernel) or "aten".
std::string pointwise_backend(const torch::Tensor& x);

// Why the jiterator was given up on in this process ("" while it works or was never tried).
std::string jiterator_failure();

}  // namespace mdm::nn
