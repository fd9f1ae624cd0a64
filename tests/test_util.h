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

}  // namespace mdm::test
