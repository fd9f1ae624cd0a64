#include <mdm/nn/folded_group_norm.h>
#include <mdm/nn/group_norm.h>
#include <mdm/nn/init.h>
#include <mdm/nn/pointwise.h>
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

namespace {

// The convolution without its bias (which the caller folds into what follows). All of the ResNet's
// convolutions have stride 1 and "same" padding.
torch::Tensor conv_without_bias(const tnn::Conv2d& conv, const torch::Tensor& x) {
  return torch::conv2d(x, conv->weight, /*bias=*/{}, /*stride=*/1, /*padding=*/conv->weight.size(-1) / 2);
}

}  // namespace

torch::Tensor ResNetImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  auto scale_shift = time_layer(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1).chunk(2, 1);  // 2 × [B, Cout, 1, 1]
  if (const auto plan = fusion_plan(x); plan.active) {
    // The same function in fewer passes, forward and backward (nn/folded_group_norm.h).
    auto h = plan.fused_kernels ? folded_group_norm_silu(x, norm1) : torch::silu(group_norm(norm1, x));
    h = plan.fold_bias ? conv_without_bias(conv1, h) : conv1(h);
    h = folded_group_norm_silu(h, norm2, plan.fold_bias ? conv1->bias : torch::Tensor(), 1 + scale_shift[0],
                               scale_shift[1]);
    h = dropout(h);
    if (!plan.fused_kernels) return conv2(h) + (conv3 ? conv3(x) : x);
    // conv2's and conv3's biases both go into the one pass that adds the residual.
    h = conv_without_bias(conv2, h);
    if (conv3) return add_bias_residual(h, conv2->bias + conv3->bias, conv_without_bias(conv3, x));
    return add_bias_residual(h, conv2->bias, x);
  }
  auto h = conv1(torch::silu(group_norm(norm1, x)));
  h = torch::silu(torch::addcmul(scale_shift[1], group_norm(norm2, h), 1 + scale_shift[0]));
  h = conv2(dropout(h));
  return h + (conv3 ? conv3(x) : x);
}

}  // namespace mdm::nn
