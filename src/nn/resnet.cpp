#include <mdm/nn/init.h>
#include <mdm/nn/group_norm.h>
#include <mdm/nn/resnet.h>

namespace mdm::nn {

namespace tnn = torch::nn;

ResNetImpl::ResNetImpl(const ResNetOptions& o) : options(o) {
  norm1 = register_module("norm1", tnn::GroupNorm(tnn::GroupNormOptions(o.num_groups(), o.in_channels())));
  conv1 = register_module("conv1", tnn::Conv2d(tnn::Conv2dOptions(o.in_channels(), o.out_channels(), 3).padding(1)));
  time_layer = register_module("time_layer", tnn::Linear(o.emb_channels(), 2 * o.out_channels()));
  norm2 = register_module("norm2", tnn::GroupNorm(tnn::GroupNormOptions(o.num_groups(), o.out_channels())));
  dropout = register_module("dropout", tnn::Dropout(o.dropout()));
  conv2 = register_module(
      "conv2", zero_module(tnn::Conv2d(tnn::Conv2dOptions(o.out_channels(), o.out_channels(), 3).padding(1))));
  if (o.in_channels() != o.out_channels()) {
    conv3 = register_module("conv3", tnn::Conv2d(tnn::Conv2dOptions(o.in_channels(), o.out_channels(), 1)));
  }
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  auto h = conv1(torch::silu(group_norm(norm1, x)));
  auto scale_shift = time_layer(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1).chunk(2, 1);  // 2 × [B, Cout, 1, 1]
  h = torch::silu(torch::addcmul(scale_shift[1], group_norm(norm2, h), 1 + scale_shift[0]));
  h = conv2(dropout(h));
  return h + (conv3 ? conv3(x) : x);
}

}  // namespace mdm::nn
