// DiMR (Liu et al., NeurIPS 2024, "Alleviating Distortion in Image Generation via Multi-Resolution Diffusion
// Models"; dimr-facts.md): a sibling of NestedUNet behind the Denoiser interface. Branches from the config,
// lowest resolution first (the first a Transformer on the patchified image, the rest ConvNeXt at 2×, 4×, …)
// all read the highest level's noisy image; each hands its concatenated block outputs to the next (TD-LN →
// pixel shuffle → TD-LN, added to its input features) and predicts its own level (ε of the sum-pool pyramid,
// MultiResDiffusion with shared_noise). Time enters only through the time-dependent norms:
// t_in = λ/4 with λ = ((k + 1)/1000)·8 − 4 for the step index k (the reference's mapping of n = k + 1).
// Keys are the reference's (stages.N.…), plus lm_proj / lm_head / stages.N.cond_embeds for text.
#pragma once

#include <mdm/models/denoiser.h>
#include <mdm/models/dimr_branch.h>
#include <torch/torch.h>

namespace mdm {

class DiMRImpl : public Denoiser {
 public:
  explicit DiMRImpl(const ModelConfig& model);

  // z: one tensor per level, lowest first; only the highest (z.back()) is read — the lower levels are its
  // pyramid, which the branches build themselves. Returns one prediction per branch, lowest first.
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& z, const torch::Tensor& t,
                                     const Conditioning& cond) override;
  std::vector<int64_t> resolutions() const override { return model_.level_resolutions(); }
  const ModelConfig& config() const override { return model_; }

  // The time input of the norms for step indices k: [B] → [B] float32.
  static torch::Tensor time_input(const torch::Tensor& k);

  torch::nn::ModuleList stages{nullptr};
  torch::nn::Linear lm_proj{nullptr};
  torch::nn::ModuleList lm_head{nullptr};

 private:
  ModelConfig model_;
};
TORCH_MODULE(DiMR);

}  // namespace mdm
