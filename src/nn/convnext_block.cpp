#include <mdm/nn/convnext_block.h>

namespace mdm::nn {

namespace tnn = torch::nn;

torch::Tensor to_channels_last(const torch::Tensor& x) { return x.permute({0, 2, 3, 1}); }
torch::Tensor to_channels_first(const torch::Tensor& x) { return x.permute({0, 3, 1, 2}); }

ConvNeXtBlockImpl::ConvNeXtBlockImpl(const ConvNeXtBlockOptions& o) {
  const int64_t k = o.kernel_size();
  block1 = register_module(
      "block1", tnn::Sequential(tnn::Functional(to_channels_first),
                                tnn::Conv2d(tnn::Conv2dOptions(o.dim(), o.dim(), k).padding(k / 2).groups(o.dim())),
                                tnn::Functional(to_channels_last)));
  block2 = register_module("block2", GatedMLP(o.dim(), o.hidden_dim()));
  dropout = register_module("dropout", tnn::Dropout(o.dropout()));
}

torch::Tensor ConvNeXtBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& time) {
  auto h = x + dropout(block1->forward(x));
  return h + dropout(block2(h, time));
}

}  // namespace mdm::nn
