// Exponential moving average of a model's weights (reference-facts.md §8: decay 0.9999, no warmup, over the
// whole state dict — parameters and buffers — after every optimizer step): ema = ema·d + θ·(1 − d).
#pragma once

#include <mdm/models/denoiser.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mdm::train {

class Ema {
 public:
  // `shadow` is a second model of the same architecture; it is set to `model`'s weights.
  Ema(const torch::nn::Module& model, std::shared_ptr<Denoiser> shadow, double decay);

  void update(const torch::nn::Module& model);
  // Sets the shadow to `model`'s weights (after loading a checkpoint into the inner model, say).
  void copy_from(const torch::nn::Module& model);

  Denoiser& model() { return *shadow_; }
  std::shared_ptr<Denoiser> shared() const { return shadow_; }
  double decay() const { return decay_; }

 private:
  std::shared_ptr<Denoiser> shadow_;
  std::vector<torch::Tensor> shadow_tensors_;  // state_dict order
  double decay_;
};

}  // namespace mdm::train
