// The interface every multi-resolution denoiser implements (UNet, NestedUNet, DiMR).
#pragma once

#include <mdm/config/model_config.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace mdm {

// What a denoiser is conditioned on, besides the noisy images and the step.
struct Conditioning {
  torch::Tensor text;       // [B, L, text_feature_dim]: the text encoder's features (zero at pads)
  torch::Tensor text_mask;  // [B, L]: 1 for tokens, 0 for padding (optional)
  torch::Tensor labels;     // [B] int64 class labels; num_classes = the null class (class conditioning)
  // Micro-conditioning values per name ([B]); a missing name uses the level's default.
  std::map<std::string, torch::Tensor> micro;
};

class Denoiser : public torch::nn::Module {
 public:
  // z: the noisy image of every level, lowest resolution first ([B, C, r, r] each).
  // t: [B] step index k ∈ {0..N-1} (the network sees it as a float, reference-facts.md §3.1).
  // Returns one prediction per level, lowest resolution first.
  virtual std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& z, const torch::Tensor& t,
                                             const Conditioning& cond) = 0;
  // The image resolution of every level, lowest first.
  virtual std::vector<int64_t> resolutions() const = 0;
  virtual const ModelConfig& config() const = 0;
};

}  // namespace mdm
