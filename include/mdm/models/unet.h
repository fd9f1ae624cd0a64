// UNet (reference-facts.md §3.4, §3.5): the MDM-S64 denoiser, and the base of every NestedUNet level.
// Submodule names give exactly the reference's state-dict keys (§11), so its checkpoints load by name.
#pragma once

#include <mdm/config/model_config.h>
#include <mdm/models/denoiser.h>
#include <mdm/nn/attention.h>
#include <mdm/nn/resnet_block.h>
#include <torch/torch.h>

#include <optional>

namespace mdm {

// The conditioning as the layers consume it, computed once by the innermost UNet and shared by all levels.
struct EncodedConditioning {
  torch::Tensor cond_emb;                 // [B, T], added to every level's time embedding (undefined: none)
  torch::Tensor tokens;                   // [B, L, cond_dim] for cross-attention (undefined: none)
  std::optional<torch::Tensor> mask;      // [B, L] key mask for cross-attention (masked_cross_attention)
  const std::map<std::string, torch::Tensor>* micro = nullptr;
};

// What one nesting level returns: every prediction from this level inwards (lowest first) and the
// features before this level's output layer (the reference hands them to the outer level).
struct LevelOutput {
  std::vector<torch::Tensor> predictions;
  torch::Tensor features;
};

class UNetImpl : public Denoiser {
 public:
  // `level` is this UNet's part of `model`; an outer level (level.has_inner()) has no middle blocks and
  // no conditioning layers: the innermost level owns those (the reference's skip_mid_blocks/skip_cond_emb).
  UNetImpl(const ModelConfig& model, const UNetConfig& level);

  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& z, const torch::Tensor& t,
                                     const Conditioning& cond) override;
  std::vector<int64_t> resolutions() const override;
  const ModelConfig& config() const override { return model_; }
  const UNetConfig& level_config() const { return level_; }

  // Text: lm_proj → LM attention layers → tokens, masked mean → cond_emb; class: embedding.
  virtual EncodedConditioning encode_conditioning(const Conditioning& cond);
  // Denoises levels [0, n) of z (this level is n-1); x_feat: the outer level's adapted features or undefined.
  virtual LevelOutput denoise(const std::vector<torch::Tensor>& z, size_t n, const torch::Tensor& t,
                              const EncodedConditioning& ec, const torch::Tensor& x_feat);

  torch::nn::Linear temb_layer1{nullptr}, temb_layer2{nullptr};
  torch::nn::Linear cond_emb{nullptr};      // text: pooled tokens → T (no bias)
  torch::nn::Embedding class_emb{nullptr};  // class: label → T (num_classes + 1 rows, the last = null)
  torch::nn::ModuleDict cond_layers{nullptr};
  torch::nn::Conv2d conv_in{nullptr};
  torch::nn::GroupNorm norm_out{nullptr};
  torch::nn::Conv2d conv_out{nullptr};
  torch::nn::ModuleList down_blocks{nullptr}, mid_blocks{nullptr}, up_blocks{nullptr};
  torch::nn::Linear lm_proj{nullptr};
  torch::nn::ModuleList lm_head{nullptr};

 protected:
  torch::Tensor time_embedding(const torch::Tensor& t, const EncodedConditioning& ec);
  torch::Tensor input_layer(const torch::Tensor& z, bool normalize);
  // Down path; fills `skips` (conv_in output first) and returns the features at the lowest resolution.
  torch::Tensor down(torch::Tensor x, const torch::Tensor& temb, const EncodedConditioning& ec,
                     std::vector<torch::Tensor>& skips);
  torch::Tensor up(torch::Tensor x, const torch::Tensor& temb, const EncodedConditioning& ec,
                   std::vector<torch::Tensor>& skips);
  torch::Tensor output_layer(const torch::Tensor& x);
  void check_inputs(const std::vector<torch::Tensor>& z, const torch::Tensor& t) const;

  ModelConfig model_;
  UNetConfig level_;
  bool innermost_;
};
TORCH_MODULE(UNet);

}  // namespace mdm
