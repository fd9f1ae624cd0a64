// Classifier-free guidance (formulas.md): pred = p_u + w·(p_c − p_u) on the raw network output of every
// level, the network run once on the batch [uncond; cond]. U-ViT's (DiMR's) form with scale s,
// ε = ε_c + s·(ε_c − ε_u), is the same with w = 1 + s (guidance_weight).
#pragma once

#include <torch/torch.h>

#include <vector>

namespace mdm {

#include <string>

// The weight w of combine_guidance for a guidance `scale` given in `form` (sample.guidance_form):
// cfg → w = scale; uvit → w = 1 + scale. Throws mdm::ConfigError on another form.
double guidance_weight(const std::string& form, double scale);

// Doubles a batch for one guided network call: [x; x] along dim 0.
std::vector<torch::Tensor> duplicate_batch(const std::vector<torch::Tensor>& levels);
// outputs: the network's output on [uncond; cond] per level → the guided output per level.
std::vector<torch::Tensor> combine_guidance(const std::vector<torch::Tensor>& outputs, double scale);

}  // namespace mdm
