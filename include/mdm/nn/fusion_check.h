// The fused path (nn/folded_group_norm.h, nn/pointwise.h) checked against the unfused ops on a device before
// Fusion::Auto relies on it there. Its CUDA half — kernels compiled at run time by NVRTC, and SyncBatchNorm's
// reductions borrowed from ATen with their dtype rules — runs on no CPU machine, so a LibTorch version, a
// driver or a dtype rule that differs from what it was written against would otherwise surface as a
// training run that throws halfway through its first step, or trains on wrong gradients. Once per device
// and dtype, on first use: folded_group_norm_silu (convolution bias, affine, scale and shift, channel means
// far from zero) and add_bias_residual, forward and backward, against the unfused ops in float64 on the
// CPU. Where it fails, Auto keeps the unfused ops there and says why once (a warning); Always still fuses.
#pragma once

#include <torch/torch.h>

#include <string>

namespace mdm::nn {

struct FusionCheck {
  bool ran = false;     // false while it has not run (or could not: during CUDA graph capture)
  bool passed = false;  // every output and gradient within tolerance, and nothing threw
  double max_error = 0; // the largest relative error (‖fused − exact‖ / ‖exact‖) of any output or gradient
  double tolerance = 0; // what it was held to: 1e-4 in float32 and float64, 3e-2 in bf16 and fp16
  std::string detail;   // the failure (which tensor, how far off, or the exception), or the worst tensor
};

// Runs the check for (device, dtype) the first time and returns the recorded result afterwards. During CUDA
// graph capture it neither runs nor records (the check reads its results on the host).
FusionCheck check_fusion(const torch::Device& device, torch::ScalarType dtype);

// check_fusion(device, dtype).passed without copying the result: what Fusion::Auto asks on every large
// activation's forward.
bool fusion_verified(const torch::Device& device, torch::ScalarType dtype);

// The recorded result, without running anything.
FusionCheck fusion_check_result(const torch::Device& device, torch::ScalarType dtype);

// One line for logs and reports: "passed (max relative error 2.9e-03 of 3e-02; worst: the scale's
// gradient)", "failed: <what>", "not run".
std::string to_string(const FusionCheck& check);

}  // namespace mdm::nn
