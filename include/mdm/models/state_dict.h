// A module's tensors by name (parameters, then buffers, in registration order) and loading them back
// with every mismatch reported by name.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mdm {

// The state dict in the reference's key format ("down_blocks.1.attn.0.qkv.weight").
std::vector<std::pair<std::string, torch::Tensor>> state_dict(const torch::nn::Module& module);

struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected;
};

// Copies tensors into the module's parameters and buffers by name (converting dtype and device).
// A shape mismatch is always an error (mdm::CheckpointError naming the tensor and both shapes);
// with strict, so are missing and unexpected names. `source` names the file in messages.
LoadReport load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                           bool strict = true, const std::string& source = "state dict");

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace mdm
