// ResNet with GroupNorm and scale-shift time injection (reference-facts.md §3.2):
// h = conv1(silu(GN1(x))); (a, b) = time_layer(silu(temb)); h = conv2(dropout(silu(GN2(h)·(1+a) + b)));
// out = h + (conv3(x) if Cin ≠ Cout else x). conv2 is zero-initialised. Large CUDA activations take the
// same function in fewer passes, in training and inference (nn/folded_group_norm.h).
#pragma once

#include <torch/torch.h>

namespace mdm::nn {

struct ResNetOptions {
  ResNetOptions(int64_t in_channels, int64_t out_channels, int64_t emb_channels)
      : in_channels_(in_channels), out_channels_(out_channels), emb_channels_(emb_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, emb_channels);
  TORCH_ARG(int64_t, num_groups) = 32;
  TORCH_ARG(double, dropout) = 0.0;
};

class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(const ResNetOptions& options);
  // x: [B, Cin, H, W]; temb: [B, T] → [B, Cout, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb);

  ResNetOptions options;
  torch::nn::GroupNorm norm1{nullptr};
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::Linear time_layer{nullptr};
  torch::nn::GroupNorm norm2{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Conv2d conv2{nullptr};
  torch::nn::Conv2d conv3{nullptr};  // only when in_channels != out_channels
};
TORCH_MODULE(ResNet);

}  // namespace mdm::nn
