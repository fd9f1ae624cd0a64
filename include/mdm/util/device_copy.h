// Host → device copies that do not stop the host.
//
// A plain `t.to(cuda)` from ordinary (pageable) host memory makes LibTorch wait until the copy is done, and
// the copy waits behind every kernel already queued on the stream: each one is a full host–device
// synchronisation, and everything the host does next (drawing the next batch's noise, launching kernels)
// leaves the GPU idle. From pinned (page-locked) memory the copy is asynchronous; LibTorch's caching host
// allocator keeps a pinned block from being reused until the copies reading it have finished, so the
// source may be a temporary.
#pragma once

#include <torch/torch.h>

namespace mdm::util {

// `t` on `device`. A CPU tensor bound for a CUDA device goes through pinned memory (copied there unless it
// is pinned already) and an asynchronous copy on the current stream; any other case is `t.to(device)`.
torch::Tensor to_device_async(const torch::Tensor& t, const torch::Device& device);

// `t` in pinned memory when `device` is a CUDA device (ready for to_device_async without a second host
// copy), else `t` itself.
torch::Tensor pin_for(const torch::Tensor& t, const torch::Device& device);

}  // namespace mdm::util
