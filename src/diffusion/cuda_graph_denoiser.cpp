#include <mdm/diffusion/cuda_graph_denoiser.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#if MDM_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace mdm {

struct CudaGraphDenoiser::Impl {
#if MDM_WITH_CUDA
  at::cuda::CUDAGraph graph;
#endif
  std::vector<torch::Tensor> z;    // the graph's inputs, one per level
  torch::Tensor t;                 // [B] float: the step index the network sees
  std::vector<torch::Tensor> out;  // the graph's outputs
};

CudaGraphDenoiser::CudaGraphDenoiser(TensorDenoiseFn network, const std::vector<torch::Tensor>& z_like, int64_t warmup)
    : impl_(std::make_unique<Impl>()) {
  if (z_like.empty()) throw Error("CUDA graph denoiser: no input levels");
  const torch::Device device = z_like.front().device();
  if (!device.is_cuda()) throw Error(fmt::format("CUDA graphs need a CUDA device; the inputs are on {}", device.str()));
#if MDM_WITH_CUDA
  torch::NoGradGuard no_grad;
  for (const auto& x : z_like) impl_->z.push_back(x.detach().clone());
  impl_->t = torch::zeros({z_like.front().size(0)}, torch::dtype(torch::kFloat).device(device));
  c10::cuda::CUDAGuard device_guard(device);
  torch::cuda::synchronize(device.index());  // the inputs are ready before the side stream reads them
  // Capture needs a stream other than the default one; warm up on it too, as torch.cuda.graph does.
  auto stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
  {
    c10::cuda::CUDAStreamGuard stream_guard(stream);
    for (int64_t i = 0; i < warmup; ++i) network(impl_->z, impl_->t);
    stream.synchronize();
    impl_->graph.capture_begin();
    try {
      impl_->out = network(impl_->z, impl_->t);
    } catch (...) {
      // End the capture (and the allocator's capture mode) before reporting what failed.
      try {
        impl_->graph.capture_end();
      } catch (...) {
      }
      throw;
    }
    impl_->graph.capture_end();
  }
  torch::cuda::synchronize(device.index());
#else
  (void)network;
  (void)warmup;
  throw Error("CUDA graphs: this libmdm was built against a LibTorch without CUDA");
#endif
}

CudaGraphDenoiser::~CudaGraphDenoiser() = default;

std::vector<torch::Tensor> CudaGraphDenoiser::operator()(const std::vector<torch::Tensor>& z, int64_t t) {
  if (z.size() != impl_->z.size()) {
    throw Error(
        fmt::format("CUDA graph denoiser: {} levels, the graph was captured for {}", z.size(), impl_->z.size()));
  }
  for (size_t l = 0; l < z.size(); ++l) {
    if (z[l].sizes() != impl_->z[l].sizes()) {
      throw Error(fmt::format("CUDA graph denoiser: level {} has shape [{}], the graph was captured for [{}]", l,
                              fmt::join(z[l].sizes(), ", "), fmt::join(impl_->z[l].sizes(), ", ")));
    }
    impl_->z[l].copy_(z[l]);
  }
  impl_->t.fill_(static_cast<double>(t - 1));
#if MDM_WITH_CUDA
  impl_->graph.replay();
#endif
  return impl_->out;
}

DenoiseFn CudaGraphDenoiser::as_denoise_fn() {
  return [this](const std::vector<torch::Tensor>& z, int64_t t) { return (*this)(z, t); };
}

}  // namespace mdm
