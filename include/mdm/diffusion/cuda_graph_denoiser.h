// The sampler's network call replayed from a CUDA graph: one denoiser call is captured at fixed shapes
// (batch, levels, dtype, device), and every sampling step copies its z and step index into the graph's
// input tensors and replays it — one launch per step instead of one per kernel. The sampler itself is
// unchanged (run_sampler takes the result as its DenoiseFn).
#pragma once

#include <mdm/diffusion/sampler.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

namespace mdm {

// The network with its step index in a device tensor (t: [B] float, the index the network sees, i.e.
// schedule index − 1): the form whose inputs a graph replay can change.
using TensorDenoiseFn =
    std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>& z, const torch::Tensor& t)>;

class CudaGraphDenoiser {
 public:
  // Runs `network` `warmup` times on a side stream (cuDNN/cuBLAS choose their algorithms, autocast and the
  // allocator settle), then captures one call on inputs shaped like `z_like` (one tensor per level, lowest
  // first, on a CUDA device), without autograd. `network` must not synchronise with the host, and must
  // open any autocast scope itself (so that the weight casts are part of the graph).
  // Throws mdm::Error when the inputs are not on a CUDA device or libmdm has no CUDA; a capture that
  // fails rethrows LibTorch's error after ending the capture.
  CudaGraphDenoiser(TensorDenoiseFn network, const std::vector<torch::Tensor>& z_like, int64_t warmup = 3);
  ~CudaGraphDenoiser();
  CudaGraphDenoiser(const CudaGraphDenoiser&) = delete;
  CudaGraphDenoiser& operator=(const CudaGraphDenoiser&) = delete;

  // Copies z and t − 1 into the graph's inputs and replays it. The returned tensors are the graph's own
  // outputs: valid until the next call.
  std::vector<torch::Tensor> operator()(const std::vector<torch::Tensor>& z, int64_t t);
  // This object as the sampler's DenoiseFn (it must outlive the function).
  DenoiseFn as_denoise_fn();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mdm
