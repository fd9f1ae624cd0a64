// Pieces of the benchmark shared by its source files (bench.cpp: training phases; sample_latency.cpp).
#pragma once

#include <mdm/config/config.h>
#include <mdm/diffusion/multires_diffusion.h>
#include <mdm/models/denoiser.h>
#include <mdm/perf/bench.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace mdm::perf::detail {

// Synthetic conditioning for `batch` images: random class labels in [0, num_classes), or random text
// features [batch, tokens, text_feature_dim] with an all-ones mask (no text encoder); nothing for
// unconditional models. `unconditional`: the null class for class models.
Conditioning synthetic_conditioning(const ModelConfig& model, int64_t batch, int64_t tokens,
                                    const torch::Device& device, at::Generator& gen, bool unconditional = false);

struct SamplingSetup {
  const Config& config;
  Denoiser& model;  // the stage's model, in eval mode
  const MultiResDiffusion& diffusion;
  size_t levels = 0;  // how many levels, from the lowest, the model has
  torch::Device device;
  bool autocast = false;
  double guidance_scale = 1.0;  // 1 = no guidance
  int64_t text_tokens = 0;
  uint64_t seed = 0;
};

// Sampling latency of the configured sampler for every batch size of `options` (eager, and on CUDA with
// the denoiser replayed from a CUDA graph); `sampler` receives a description of the sampler that ran.
std::vector<SampleLatency> measure_sampling(const SamplingSetup& setup, const BenchOptions& options,
                                            std::string& sampler, const std::function<void(const std::string&)>& log);

}  // namespace mdm::perf::detail
