#include <mdm/models/dimr_branch.h>
#include <mdm/nn/convnext_block.h>
#include <mdm/nn/pixel_shuffle.h>
#include <mdm/nn/position_embedding.h>
#include <mdm/nn/td_norm.h>
#include <mdm/nn/transformer_block.h>
#include <mdm/nn/uvit_skips.h>

namespace mdm {

namespace tnn = torch::nn;
namespace F = torch::nn::functional;

namespace {

// The reference's EvenDownInterpolate: area interpolation by an integer ratio (identity at 1).
tnn::Functional area_downsample(int64_t ratio) {
  return tnn::Functional([ratio](const torch::Tensor& x) {
    if (ratio == 1) return x;
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{x.size(2) / ratio, x.size(3) / ratio})
                                 .mode(torch::kArea));
  });
}

}  // namespace

int64_t DiMRBranchImpl::handoff_dim(const DiMRBranchConfig& b) { return b.dim * (nn::uvit_depth(b.num_blocks) + 1); }

DiMRBranchImpl::DiMRBranchImpl(const ModelConfig& model, size_t index)
    : branch(model.dimr.branches.at(index)), transformer(branch.block == "transformer") {
  const auto& b = branch;
  const int64_t top = model.dimr.branches.back().resolution;
  const int64_t input_ratio = top / (b.resolution * b.patch_size);
  input_layer = register_module(
      "input_layer",
      tnn::Sequential(area_downsample(input_ratio),
                      tnn::Conv2d(tnn::Conv2dOptions(model.input_channels, b.dim, b.patch_size).stride(b.patch_size)),
                      tnn::Functional(nn::to_channels_last), nn::PositionEmbedding(b.resolution, b.resolution, b.dim)));
  if (transformer && model.conditioning == ConditioningKind::Class) {
    class_embeds = register_module("class_embeds", tnn::Embedding(model.num_classes + 1, b.dim));
    torch::NoGradGuard no_grad;
    class_embeds->weight.normal_(0.0, 0.02);
  }
  if (transformer && model.conditioning == ConditioningKind::Text) {
    cond_embeds = register_module("cond_embeds", nn::dimr_linear(model.cond_dim(), b.dim, /*bias=*/false));
  }
  if (index > 0) {
    const auto& low = model.dimr.branches[index - 1];
    const int64_t low_dim = handoff_dim(low);
    upsample = register_module("upsample", tnn::ModuleList(nn::TDLayerNorm(low_dim),
                                                           nn::PixelShuffleUpsample(low_dim, b.dim, b.resolution / low.resolution),
                                                           nn::TDLayerNorm(b.dim)));
  }
  blocks = register_module("blocks", tnn::ModuleList());
  const int64_t cond_dim = transformer ? model.cond_dim() : 0;
  for (int64_t i = 0; i < nn::uvit_depth(b.num_blocks); ++i) {
    if (transformer) {
      blocks->push_back(nn::TransformerBlock(nn::TransformerBlockOptions(b.dim, b.hidden_dim)
                                                 .num_heads(b.num_heads)
                                                 .cond_dim(cond_dim)
                                                 .dropout(b.dropout)));
    } else {
      blocks->push_back(
          nn::ConvNeXtBlock(nn::ConvNeXtBlockOptions(b.dim, b.hidden_dim).kernel_size(b.kernel_size).dropout(b.dropout)));
    }
  }
  skip_denses = register_module("skip_denses", nn::uvit_skip_denses(b.dim, b.num_blocks));
  const int64_t k = model.dimr.final_kernel_size;
  output_layer = register_module(
      "output_layer", tnn::ModuleList(nn::TDLayerNorm(b.dim), tnn::Functional(nn::to_channels_first),
                                      tnn::Conv2d(tnn::Conv2dOptions(b.dim, model.output_channels, k).padding(k / 2))));
}

torch::Tensor DiMRBranchImpl::run_blocks(torch::Tensor x, const DiMRBranchInput& in, std::vector<torch::Tensor>& outputs) {
  if (!transformer) {
    auto block = [&](size_t i, const torch::Tensor& h) { return blocks->ptr<nn::ConvNeXtBlockImpl>(i)->forward(h, in.time); };
    return nn::run_uvit_blocks(block, blocks->size(), skip_denses, x, &outputs);
  }
  // Tokens [B, H·W, D], with the condition tokens in front (the class token as U-ViT; the pooled text likewise).
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), D = x.size(3);
  std::vector<torch::Tensor> parts;
  if (class_embeds) parts.push_back(class_embeds(in.labels.to(torch::kLong).reshape({-1})).unsqueeze(1).to(x.scalar_type()));
  if (cond_embeds) parts.push_back(cond_embeds(in.text_pooled).unsqueeze(1));
  const int64_t extra = static_cast<int64_t>(parts.size());
  parts.push_back(x.reshape({B, H * W, D}));
  auto tokens = torch::cat(parts, 1);  // [B, extra + H·W, D]
  auto block = [&](size_t i, const torch::Tensor& h) {
    return blocks->ptr<nn::TransformerBlockImpl>(i)->forward(h, in.time, in.text_tokens, in.text_mask);
  };
  std::vector<torch::Tensor> token_outputs;
  tokens = nn::run_uvit_blocks(block, blocks->size(), skip_denses, tokens, &token_outputs);
  for (const auto& o : token_outputs) outputs.push_back(o.narrow(1, extra, H * W).reshape({B, H, W, D}));
  return tokens.narrow(1, extra, H * W).reshape({B, H, W, D});
}

DiMRBranchOutput DiMRBranchImpl::forward(const torch::Tensor& image, const torch::Tensor& lowres,
                                         const DiMRBranchInput& in) {
  auto x = input_layer->forward(image);  // [B, r, r, D]
  if (upsample) {
    TORCH_CHECK(lowres.defined(), "DiMR branch ", branch.resolution, "²: the previous branch's features are missing");
    auto h = upsample->ptr<nn::TDLayerNormImpl>(0)->forward(lowres, in.time);
    h = upsample->ptr<nn::PixelShuffleUpsampleImpl>(1)->forward(h);
    x = x + upsample->ptr<nn::TDLayerNormImpl>(2)->forward(h, in.time);
  }
  std::vector<torch::Tensor> outputs;
  x = run_blocks(x, in, outputs);
  auto y = output_layer->ptr<nn::TDLayerNormImpl>(0)->forward(x, in.time);
  y = output_layer->ptr<tnn::Conv2dImpl>(2)->forward(nn::to_channels_first(y));  // [B, C, r, r]
  return {y, torch::cat(outputs, -1)};
}

}  // namespace mdm
