// The sampler's Gaussian noise: one CPU generator per sample, so that an image's noise depends only on
// its own seed and the same image comes out whatever the batch it is drawn in, on any device.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace mdm {

class NoiseSource {
 public:
  explicit NoiseSource(std::vector<uint64_t> seeds);
  // N(0, I) shaped like `like` ([B, ...] with B = number of seeds), on like's device and dtype.
  // The samples are drawn in parallel (each generator by one thread, so the numbers do not depend on the
  // thread count). For a CUDA `like` they are drawn into pinned memory and copied without blocking: the
  // host does not wait for the GPU here, so the next step's draws overlap the network's kernels.
  torch::Tensor normal(const torch::Tensor& like);
  size_t batch_size() const { return generators_.size(); }

 private:
  std::vector<at::Generator> generators_;
};

}  // namespace mdm
