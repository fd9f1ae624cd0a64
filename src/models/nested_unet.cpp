#include <mdm/models/nested_unet.h>
#include <mdm/nn/init.h>

namespace mdm {

namespace tnn = torch::nn;

NestedUNetImpl::NestedUNetImpl(const ModelConfig& model, const UNetConfig& level) : UNetImpl(model, level) {
  const UNetConfig& inner = level.inner();
  if (inner.has_inner()) {
    inner_unet = std::make_shared<NestedUNetImpl>(model, inner);
  } else {
    inner_unet = std::make_shared<UNetImpl>(model, inner);
  }
  register_module("inner_unet", inner_unet);
  const int64_t outer_last = level.resolution_channels.back(), inner_first = inner.resolution_channels.front();
  if (!level.skip_inner_unet_input) {
    in_adapter = register_module(
        "in_adapter", nn::zero_module(tnn::Conv2d(tnn::Conv2dOptions(outer_last, inner_first, 3).padding(1))));
  }
  out_adapter = register_module(
      "out_adapter", nn::zero_module(tnn::Conv2d(tnn::Conv2dOptions(inner_first, outer_last, 3).padding(1))));
}

EncodedConditioning NestedUNetImpl::encode_conditioning(const Conditioning& cond) {
  return inner_unet->encode_conditioning(cond);  // the innermost level owns the conditioning layers
}

LevelOutput NestedUNetImpl::denoise(const std::vector<torch::Tensor>& z, size_t n, const torch::Tensor& t,
                                    const EncodedConditioning& ec, const torch::Tensor& x_feat) {
  auto temb = time_embedding(t, ec);
  // The outer input is divided by its per-sample std unless skip_normalization (reference-facts.md §2.5).
  auto x = input_layer(z[n - 1], /*normalize=*/!level_.skip_normalization);
  if (x_feat.defined()) x = x + x_feat;
  std::vector<torch::Tensor> skips;
  x = down(x, temb, ec, skips);  // ends at the inner model's resolution
  auto inner = inner_unet->denoise(z, n - 1, t, ec, in_adapter ? in_adapter(x) : torch::Tensor());
  x = x + out_adapter(inner.features);
  x = up(x, temb, ec, skips);
  LevelOutput out{std::move(inner.predictions), x};
  out.predictions.push_back(output_layer(x));
  return out;
}

}  // namespace mdm
