// One DiMR branch (the reference's Stage; DiMR §3.1, Fig. 2): input layer (area-downsample the highest
// level's noisy image, patch convolution, learned position embedding), the previous branch's hand-off
// (TD-LN → pixel shuffle → TD-LN, added), a U-ViT stack of Transformer or ConvNeXt blocks, and an output
// layer (TD-LN → k×k convolution) that predicts this branch's level. Parameter names are the reference's.
#pragma once

#include <mdm/config/model_config.h>
#include <torch/torch.h>

#include <optional>
#include <vector>

namespace mdm {

// What a branch is conditioned on, computed once by DiMR.
struct DiMRBranchInput {
  torch::Tensor time;                 // [B] t_in of the time-dependent norms
  torch::Tensor labels;               // [B] class labels (class conditioning)
  torch::Tensor text_tokens;          // [B, L, cond_dim] (text conditioning)
  torch::Tensor text_pooled;          // [B, cond_dim]
  std::optional<torch::Tensor> text_mask;  // [B, L]
};

struct DiMRBranchOutput {
  torch::Tensor prediction;  // [B, C, r, r]
  torch::Tensor handoff;     // [B, r, r, D·(depth + 1)]: the input and every block's output, concatenated
};

class DiMRBranchImpl : public torch::nn::Module {
 public:
  // index: this branch in model.dimr.branches; the branch before it (if any) hands over its features.
  DiMRBranchImpl(const ModelConfig& model, size_t index);

  // image: [B, C, R, R] the highest level's noisy image; lowres: the previous branch's hand-off (or undefined).
  DiMRBranchOutput forward(const torch::Tensor& image, const torch::Tensor& lowres, const DiMRBranchInput& in);

  // The hand-off width of a branch: dim · (uvit_depth(num_blocks) + 1).
  static int64_t handoff_dim(const DiMRBranchConfig& branch);

  DiMRBranchConfig branch;
  bool transformer;
  torch::nn::Sequential input_layer{nullptr};  // [area-downsample, patch conv, to channels-last, position embedding]
  torch::nn::Embedding class_embeds{nullptr};  // class: num_classes + 1 rows (the last = null class)
  torch::nn::Linear cond_embeds{nullptr};      // text: the pooled text → one token (no bias)
  torch::nn::ModuleList upsample{nullptr};     // [TDLayerNorm(lowres), PixelShuffleUpsample, TDLayerNorm(dim)]
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::ModuleList skip_denses{nullptr};
  torch::nn::ModuleList output_layer{nullptr};  // [TDLayerNorm(dim), to channels-first, Conv2d]

 private:
  torch::Tensor run_blocks(torch::Tensor x, const DiMRBranchInput& in, std::vector<torch::Tensor>& outputs);
};
TORCH_MODULE(DiMRBranch);

}  // namespace mdm
