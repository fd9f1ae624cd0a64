// One level of a UNet path (the reference's ResNetBlock, reference-facts.md §3.4): N ResNets, each
// followed by L attention layers (attn[i·L + j]), then an optional stride-2 conv (down) or nearest ×2 +
// conv (up). Up blocks concatenate one skip activation before each ResNet.
#pragma once

#include <mdm/nn/attention.h>
#include <mdm/nn/resnet.h>
#include <torch/torch.h>

#include <optional>
#include <vector>

namespace mdm::nn {

enum class Resample { None, Down, Up };

struct ResNetBlockOptions {
  // in_channels[i]: input width of ResNet i (an up block's includes the concatenated skip).
  ResNetBlockOptions(std::vector<int64_t> in_channels, int64_t out_channels, int64_t emb_channels)
      : in_channels_(std::move(in_channels)), out_channels_(out_channels), emb_channels_(emb_channels) {}
  TORCH_ARG(std::vector<int64_t>, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, emb_channels);
  TORCH_ARG(int64_t, num_attn_layers) = 0;  // after each ResNet
  TORCH_ARG(int64_t, num_heads) = 8;
  TORCH_ARG(int64_t, cond_dim) = 0;
  TORCH_ARG(bool, attention_ffn) = false;
  TORCH_ARG(int64_t, num_groups) = 32;
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(Resample, resample) = Resample::None;
};

class ResNetBlockImpl : public torch::nn::Module {
 public:
  explicit ResNetBlockImpl(const ResNetBlockOptions& options);

  // skips: consumed front to back, one per ResNet (up path); nullptr on the down path.
  // activations: when given, receives every ResNet output and the resampled output (down path skips).
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& temb, std::vector<torch::Tensor>* skips,
                        std::vector<torch::Tensor>* activations, const torch::Tensor& cond,
                        const std::optional<torch::Tensor>& cond_mask);

  int64_t num_resnets() const { return static_cast<int64_t>(options.in_channels().size()); }

  ResNetBlockOptions options;
  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList attn{nullptr};
  torch::nn::Conv2d resample{nullptr};
};
TORCH_MODULE(ResNetBlock);

}  // namespace mdm::nn
