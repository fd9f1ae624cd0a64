// DiMR's ConvNeXt block (DiMR §3.1, Fig. 2; the reference's ConvNeXtBlock), on channel-last features:
//   x = x + DWConv_k×k(x),   x = x + GatedMLP(x, t)   (TD-RMSNorm inside, gated_mlp.h)
// The depthwise convolution is registered as block1.1 (block1 = [to channels-first, conv, to channels-last])
// so that the reference's keys map onto ours.
#pragma once

#include <mdm/nn/gated_mlp.h>
#include <torch/torch.h>

namespace mdm::nn {

struct ConvNeXtBlockOptions {
  ConvNeXtBlockOptions(int64_t dim, int64_t hidden_dim) : dim_(dim), hidden_dim_(hidden_dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, hidden_dim);
  TORCH_ARG(int64_t, kernel_size) = 7;
  TORCH_ARG(double, dropout) = 0.0;
};

class ConvNeXtBlockImpl : public torch::nn::Module {
 public:
  explicit ConvNeXtBlockImpl(const ConvNeXtBlockOptions& options);
  // x: [B, H, W, dim]; time: [B] or [1].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& time);

  torch::nn::Sequential block1{nullptr};
  GatedMLP block2{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(ConvNeXtBlock);

// [B, C, H, W] ↔ [B, H, W, C].
torch::Tensor to_channels_last(const torch::Tensor& x);
torch::Tensor to_channels_first(const torch::Tensor& x);

}  // namespace mdm::nn
