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

// The three kernels of the folded GroupNorm (nn/folded_group_norm.h) work on x − centre, formed in float32
// before anything multiplies it, so that a channel whose mean is far from zero loses nothing to
// cancellation. centre, a, b, alpha, beta, gamma: per-(sample, channel) values broadcasting against x
// ([B, C, 1, 1]), any floating dtype. In a low-precision dtype the centre goes to the kernel as two values
// (hi + lo, ~16 bits), the others rounded to x's dtype (their error is then of the order of the output's
// own rounding). The ATen stand-ins compute in float32 (float64 for float64 x).

// y = silu((x − centre)·a + b) in x's dtype.
torch::Tensor scale_shift_silu(const torch::Tensor& x, const torch::Tensor& centre, const torch::Tensor& a,
                               const torch::Tensor& b);

// Its gradient with respect to (x − centre)·a + b: dy·silu'((x − centre)·a + b) in x's dtype, rounded as
// scale_shift_silu rounds its operands.
torch::Tensor scale_shift_silu_backward(const torch::Tensor& dy, const torch::Tensor& x, const torch::Tensor& centre,
                                        const torch::Tensor& a, const torch::Tensor& b);

// y = dz·alpha + (x − centre)·beta + gamma in dz's dtype (dz and x of one shape and dtype).
torch::Tensor affine_combination(const torch::Tensor& dz, const torch::Tensor& x, const torch::Tensor& centre,
                                 const torch::Tensor& alpha, const torch::Tensor& beta, const torch::Tensor& gamma);

// y = x + bias + residual (bias [C] broadcast over [B, C, ...]), in the dtype x + residual would have.
// Differentiable: dx and dresidual are dy, dbias its sum over all but the channel dimension.
torch::Tensor add_bias_residual(const torch::Tensor& x, const torch::Tensor& bias, const torch::Tensor& residual);

// The dtype the ATen stand-ins (and the statistics of nn/folded_group_norm.h) compute in: float32, float64
// for a float64 x.
torch::ScalarType arithmetic_dtype(const torch::Tensor& x);

// How the functions above run on tensors like x: "jiterator" (fused CUDA kernels) or "aten".
std::string pointwise_backend(const torch::Tensor& x);

// Why the jiterator was given up on in this process ("" while it works or was never tried).
std::string jiterator_failure();

}  // namespace mdm::nn
