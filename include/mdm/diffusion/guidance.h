// Classifier-free guidance (formulas.md): pred = p_u + w·(p_c − p_u) on the raw network output of every
// level, the network run once on the batch [uncond; cond].
#pragma once

#include <torch/torch.h>

#include <vector>

namespace mdm {

// Doubles a batch for one guided network call: [x; x] along dim 0.
std::vector<torch::Tensor> duplicate_batch(const std::vector<torch::Tensor>& levels);
// outputs: the network's output on [uncond; cond] per level → the guided output per level.
std::vector<torch::Tensor> combine_guidance(const std::vector<torch::Tensor>& outputs, double scale);

}  // namespace mdm
