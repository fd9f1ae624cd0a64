// Sinusoidal embedding of the step index (reference-facts.md §3.1, formulas.md "Time input"):
// half = T/8 frequencies f_i = exp(-i·ln(10000)/half), e = [sin(k·f), cos(k·f)] → T/4 values.
#pragma once

#include <torch/torch.h>

namespace mdm::nn {

// times: [B] (any floating or integer dtype) → [B, emb_channels / 4], float32.
torch::Tensor timestep_sinusoid(const torch::Tensor& times, int64_t emb_channels);

// Linear(T/4 → T) → SiLU → Linear(T → T) over the sinusoid: the reference's temb_layer1/2 and each
// micro-conditioning pair cond_layers.<name>.{0,1}. Holds no modules itself: callers own the layers
// so that their names match the reference's state-dict keys.
torch::Tensor embed_timesteps(const torch::Tensor& times, torch::nn::Linear& layer1, torch::nn::Linear& layer2);

}  // namespace mdm::nn
