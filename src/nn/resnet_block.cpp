#include <mdm/nn/resnet_block.h>
#include <mdm/util/compat.h>

namespace mdm::nn {

namespace tnn = torch::nn;

ResNetBlockImpl::ResNetBlockImpl(const ResNetBlockOptions& o) : options(o) {
  resnets = register_module("resnets", tnn::ModuleList());
  for (int64_t cin : o.in_channels()) {
    resnets->push_back(ResNet(ResNetOptions(cin, o.out_channels(), o.emb_channels())
                                  .num_groups(o.num_groups())
                                  .dropout(o.dropout())));
  }
  if (o.num_attn_layers() > 0) {
    attn = register_module("attn", tnn::ModuleList());
    for (size_t i = 0; i < o.in_channels().size() * static_cast<size_t>(o.num_attn_layers()); ++i) {
      attn->push_back(SpatialAttention(SpatialAttentionOptions(o.out_channels())
                                           .num_heads(o.num_heads())
                                           .cond_dim(o.cond_dim())
                                           .ffn(o.attention_ffn())));
    }
  }
  if (o.resample() == Resample::Down) {
    resample = register_module(
        "resample", tnn::Conv2d(tnn::Conv2dOptions(o.out_channels(), o.out_channels(), 3).stride(2).padding(1)));
  } else if (o.resample() == Resample::Up) {
    resample =
        register_module("resample", tnn::Conv2d(tnn::Conv2dOptions(o.out_channels(), o.out_channels(), 3).padding(1)));
  }
}

torch::Tensor ResNetBlockImpl::forward(torch::Tensor x, const torch::Tensor& temb, std::vector<torch::Tensor>* skips,
                                       std::vector<torch::Tensor>* activations, const torch::Tensor& cond,
                                       const std::optional<torch::Tensor>& cond_mask) {
  const int64_t layers = options.num_attn_layers();
  for (int64_t i = 0; i < num_resnets(); ++i) {
    if (skips) {
      TORCH_CHECK(!skips->empty(), "ResNetBlock: ran out of skip activations");
      x = torch::cat({x, skips->front()}, 1);
      skips->erase(skips->begin());
    }
    x = resnets->ptr<ResNetImpl>(i)->forward(x, temb);
    for (int64_t j = 0; j < layers; ++j) x = attn->ptr<SpatialAttentionImpl>(i * layers + j)->forward(x, cond, cond_mask);
    if (activations) activations->push_back(x);
  }
  if (options.resample() != Resample::None) {
    if (options.resample() == Resample::Up) x = compat::upsample_nearest2x(x);
    x = resample(x);
    if (activations) activations->push_back(x);
  }
  return x;
}

}  // namespace mdm::nn
