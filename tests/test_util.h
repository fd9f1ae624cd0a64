// Shared helpers of the test executables.
#pragma once

#include <gtest/gtest.h>
#include <mdm/mdm.h>

#include <string>

namespace mdm::test {

inline std::string fixture(const std::string& name) { return std::string(MDM_FIXTURES_DIR) + "/" + name; }
inline std::string config_file(const std::string& name) { return std::string(MDM_CONFIGS_DIR) + "/" + name; }

// Fills every parameter and buffer with values of unit scale (fixed seed): a fresh model has
// zero-initialised layers, which would hide wiring mistakes.
inline void randomize(torch::nn::Module& module, uint64_t seed = 0) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : module.parameters()) {
    const double fan_in = p.dim() > 1 ? static_cast<double>(p.numel() / p.size(0)) : 1.0;
    p.normal_(0.0, p.dim() > 1 ? 1.0 / std::sqrt(fan_in) : 0.1);
  }
}

// 4-D weights (convolutions) in channels-last memory format, as mdm-bench --channels-last makes them.
inline void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

// A GroupNorm with random affine parameters around the identity (weight 1 ± 0.3, bias ± 0.2).
inline torch::nn::GroupNorm random_group_norm(int64_t groups, int64_t channels, uint64_t seed) {
  torch::manual_seed(seed);
  torch::nn::GroupNorm norm(torch::nn::GroupNormOptions(groups, channels));
  torch::NoGradGuard no_grad;
  norm->weight.copy_(1 + 0.3 * torch::randn({channels}));
  norm->bias.copy_(0.2 * torch::randn({channels}));
  return norm;
}

// Random inputs of a text-conditioned model, drawn from torch's global generator on the CPU and moved to
// `device`: noise at every level ([batch, 3, r, r]), step indices spread over 10 … 900, 7 tokens of text
// features of width text_dim.
struct ModelInputs {
  std::vector<torch::Tensor> z;
  torch::Tensor t;
  Conditioning cond;
};
inline ModelInputs random_model_inputs(const Denoiser& model, int64_t text_dim, int64_t batch,
                                       torch::Device device = torch::kCPU) {
  ModelInputs in;
  for (int64_t r : model.resolutions()) in.z.push_back(torch::randn({batch, 3, r, r}).to(device));
  in.t = torch::linspace(10, 900, batch).to(device);
  in.cond.text = torch::randn({batch, 7, text_dim}).to(device);
  in.cond.text_mask = torch::ones({batch, 7}).to(device);
  return in;
}

}  // namespace mdm::test
