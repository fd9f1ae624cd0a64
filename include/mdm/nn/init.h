// Initialisation helpers shared by every architecture.
#pragma once

#include <torch/torch.h>

namespace mdm::nn {

// Sets every parameter of `module` to zero and returns it: the reference zero-initialises the last
// layer of every residual branch (and the output and adapter convolutions), so a fresh model is the
// identity on its skip paths and outputs exactly zero.
template <typename ModuleHolder>
ModuleHolder zero_module(ModuleHolder module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module->parameters()) p.zero_();
  return module;
}

}  // namespace mdm::nn
