#include <mdm/nn/timestep_embedding.h>

#include <cmath>

namespace mdm::nn {

torch::Tensor timestep_sinusoid(const torch::Tensor& times, int64_t emb_channels) {
  const int64_t half = emb_channels / 8;
  // Same float32 arithmetic as the reference: exp(arange(half) · (-ln(10000)/half)).
  auto freqs = torch::exp(torch::arange(half, torch::dtype(torch::kFloat).device(times.device())) *
                          (-std::log(10000.0) / static_cast<double>(half)));
  auto angles = times.to(torch::kFloat).view({-1, 1}) * freqs.unsqueeze(0);  // [B, half]
  return torch::cat({torch::sin(angles), torch::cos(angles)}, 1);           // [B, 2·half] = [B, T/4]
}

torch::Tensor embed_timesteps(const torch::Tensor& times, torch::nn::Linear& layer1, torch::nn::Linear& layer2) {
  const int64_t emb_channels = layer1->options.out_features();
  // The sinusoid is computed in float32 (as the reference does) and then given the layers' dtype: a model
  // cast whole to bf16 for sampling (Pipeline) has bf16 weights, which a float32 input cannot meet; under
  // autocast the weights are float32 and this is a no-op.
  auto sinusoid = timestep_sinusoid(times, emb_channels).to(layer1->weight.scalar_type());
  return layer2(torch::silu(layer1(sinusoid)));
}

}  // namespace mdm::nn
