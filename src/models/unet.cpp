#include <mdm/models/text_conditioning.h>
#include <mdm/models/unet.h>
#include <mdm/nn/group_norm.h>
#include <mdm/nn/init.h>
#include <mdm/nn/timestep_embedding.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace mdm {

namespace tnn = torch::nn;
using nn::ResNetBlock;
using nn::ResNetBlockImpl;
using nn::ResNetBlockOptions;

UNetImpl::UNetImpl(const ModelConfig& model, const UNetConfig& level)
    : model_(model), level_(level), innermost_(!level.has_inner()) {
  // Seen from this level, the model is this UNet and the levels inside it: an inner model used on its
  // own (a progressive stage, sampling during one) reports its own levels and config.
  model_.unet = level;
  model_.arch = level.has_inner() ? "nested_unet" : "unet";
  const int64_t T = model.emb_channels;
  const int64_t L = level.num_levels();
  const auto& ch = level.resolution_channels;
  const bool text = innermost_ && model.conditioning == ConditioningKind::Text;

  // Registration order = the reference's state-dict order (reference-facts.md §11).
  temb_layer1 = register_module("temb_layer1", tnn::Linear(T / 4, T));
  temb_layer2 = register_module("temb_layer2", tnn::Linear(T, T));
  if (text) cond_emb = register_module("cond_emb", tnn::Linear(tnn::LinearOptions(model.cond_dim(), T).bias(false)));
  if (innermost_ && model.conditioning == ConditioningKind::Class) {
    class_emb = register_module("class_emb", tnn::Embedding(model.num_classes + 1, T));
  }
  if (!level.micro_conditioning.empty()) {
    cond_layers = register_module("cond_layers", tnn::ModuleDict());
    for (const auto& [name, value] : level.micro_conditioning) {
      (void)value;
      cond_layers->update(std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>{
          {name, tnn::ModuleList(tnn::Linear(T / 4, T), nn::zero_module(tnn::Linear(T, T))).ptr()}});
    }
  }
  conv_in = register_module("conv_in", tnn::Conv2d(tnn::Conv2dOptions(model.input_channels, ch[0], 3).padding(1)));
  norm_out = register_module("norm_out", tnn::GroupNorm(tnn::GroupNormOptions(level.num_groups_norm, ch[0])));
  conv_out = register_module(
      "conv_out", nn::zero_module(tnn::Conv2d(tnn::Conv2dOptions(ch[0], model.output_channels, 3).padding(1))));

  auto block_options = [&](std::vector<int64_t> in, int64_t out, int64_t attn_layers, nn::Resample resample) {
    return ResNetBlockOptions(std::move(in), out, T)
        .num_attn_layers(attn_layers)
        .num_heads(level.num_heads)
        .cond_dim(model.cond_dim())
        .attention_ffn(level.attention_ffn)
        .num_groups(level.num_groups_norm)
        .dropout(level.dropout)
        .resample(resample);
  };

  // Down path: the skip widths it leaves behind are consumed in reverse by the up path.
  down_blocks = register_module("down_blocks", tnn::ModuleList());
  int64_t channels = ch[0];
  std::vector<int64_t> skip_channels = {channels};
  for (int64_t i = 0; i < L; ++i) {
    std::vector<int64_t> in;
    for (int64_t j = 0; j < level.num_res_blocks[i]; ++j) {
      in.push_back(channels);
      channels = ch[i];
      skip_channels.push_back(channels);
    }
    if (i != L - 1) skip_channels.push_back(channels);
    down_blocks->push_back(ResNetBlock(block_options(in, ch[i], level.num_attn_layers_per_block[i],
                                                     i != L - 1 ? nn::Resample::Down : nn::Resample::None)));
  }
  if (innermost_ && !level.skip_mid_blocks) {
    mid_blocks = register_module("mid_blocks", tnn::ModuleList());
    mid_blocks->push_back(ResNetBlock(block_options({channels}, channels, 1, nn::Resample::None)));
    mid_blocks->push_back(ResNetBlock(block_options({channels}, channels, 0, nn::Resample::None)));
  }
  up_blocks = register_module("up_blocks", tnn::ModuleList());
  for (int64_t i = L - 1; i >= 0; --i) {
    std::vector<int64_t> in;
    for (int64_t j = 0; j < level.num_res_blocks[i] + 1; ++j) {
      in.push_back(channels + skip_channels.back());
      skip_channels.pop_back();
      channels = ch[i];
    }
    up_blocks->push_back(ResNetBlock(block_options(in, ch[i], level.num_attn_layers_per_block[i],
                                                   i != 0 ? nn::Resample::Up : nn::Resample::None)));
  }
  if (text) register_text_layers(*this, model, model.unet.num_heads, lm_proj, lm_head);
}

std::vector<int64_t> UNetImpl::resolutions() const { return model_.level_resolutions(); }

void UNetImpl::check_inputs(const std::vector<torch::Tensor>& z, const torch::Tensor& t) const {
  const auto res = model_.level_resolutions();
  if (z.size() != res.size()) {
    throw Error(fmt::format("denoiser: got {} noisy images, the model has {} levels (resolutions {}, lowest first)",
                            z.size(), res.size(), fmt::join(res, ", ")));
  }
  for (size_t i = 0; i < z.size(); ++i) {
    if (!z[i].defined() || z[i].dim() != 4 || z[i].size(1) != model_.input_channels) {
      throw Error(fmt::format("denoiser: z[{}] must be [B, {}, H, W] (level {}², lowest resolution first), got {}", i,
                              model_.input_channels, res[i], z[i].defined() ? fmt::format("{}", z[i].sizes()) : "none"));
    }
    if (z[i].size(0) != z[0].size(0)) throw Error("denoiser: every level must have the same batch size");
    if (i > 0) {
      const int64_t ratio = res[i] / res[i - 1];
      if (z[i].size(2) != z[i - 1].size(2) * ratio || z[i].size(3) != z[i - 1].size(3) * ratio) {
        throw Error(fmt::format("denoiser: z[{}] is {}×{} but must be {}× z[{}] ({}×{}); levels go lowest resolution first",
                                i, z[i].size(2), z[i].size(3), ratio, i - 1, z[i - 1].size(2), z[i - 1].size(3)));
      }
    }
  }
  const int64_t down = int64_t{1} << (model_.levels().back()->num_levels() - 1);
  if (z[0].size(2) % down != 0 || z[0].size(3) % down != 0) {
    throw Error(fmt::format("denoiser: the lowest level's size {}×{} must be divisible by {}", z[0].size(2), z[0].size(3), down));
  }
  if (t.numel() != 1 && t.numel() != z[0].size(0)) {
    throw Error(fmt::format("denoiser: t has {} entries for a batch of {}", t.numel(), z[0].size(0)));
  }
}

std::vector<torch::Tensor> UNetImpl::forward(const std::vector<torch::Tensor>& z, const torch::Tensor& t,
                                             const Conditioning& cond) {
  check_inputs(z, t);
  auto times = t.numel() == 1 ? t.reshape({1}).expand({z[0].size(0)}) : t.reshape({-1});
  EncodedConditioning ec = encode_conditioning(cond);
  ec.micro = &cond.micro;
  return denoise(z, z.size(), times, ec, torch::Tensor()).predictions;
}

EncodedConditioning UNetImpl::encode_conditioning(const Conditioning& cond) {
  EncodedConditioning ec;
  if (model_.conditioning == ConditioningKind::Text) {
    auto text = encode_text(model_, cond, lm_proj, lm_head);
    ec.cond_emb = cond_emb(text.pooled);
    ec.tokens = text.tokens;
    ec.mask = text.mask;
  } else if (model_.conditioning == ConditioningKind::Class) {
    if (!cond.labels.defined()) throw Error("denoiser: a class-conditioned model needs Conditioning::labels [B]");
    ec.cond_emb = class_emb(cond.labels.to(torch::kLong).reshape({-1}));
  }
  return ec;
}

torch::Tensor UNetImpl::time_embedding(const torch::Tensor& t, const EncodedConditioning& ec) {
  auto temb = nn::embed_timesteps(t, temb_layer1, temb_layer2);
  if (ec.cond_emb.defined()) temb = temb + ec.cond_emb;
  for (const auto& [name, fallback] : level_.micro_conditioning) {
    torch::Tensor value;
    if (ec.micro && ec.micro->count(name)) {
      value = ec.micro->at(name).to(torch::kFloat).reshape({-1});
    } else {
      value = torch::full_like(t, fallback, torch::dtype(torch::kFloat));
    }
    // A scale beyond the level's own resolution is clamped to it; other values are scaled into the
    // sinusoid's range (reference-facts.md §3.1).
    value = name == "scale" ? (value / fallback).clamp_max(1.0) * fallback : value * 1000.0;
    auto layers = cond_layers[name]->as<tnn::ModuleListImpl>();
    auto l1 = tnn::Linear(layers->ptr<tnn::LinearImpl>(0));
    auto l2 = tnn::Linear(layers->ptr<tnn::LinearImpl>(1));
    temb = temb + nn::embed_timesteps(value, l1, l2);
  }
  return temb;
}

torch::Tensor UNetImpl::input_layer(const torch::Tensor& z, bool normalize) {
  if (!normalize) return conv_in(z);
  return conv_in(z / z.std({1, 2, 3}, /*unbiased=*/true, /*keepdim=*/true));
}

torch::Tensor UNetImpl::down(torch::Tensor x, const torch::Tensor& temb, const EncodedConditioning& ec,
                             std::vector<torch::Tensor>& skips) {
  skips.push_back(x);
  for (const auto& block : *down_blocks) x = block->as<ResNetBlockImpl>()->forward(x, temb, nullptr, &skips, ec.tokens, ec.mask);
  return x;
}

torch::Tensor UNetImpl::up(torch::Tensor x, const torch::Tensor& temb, const EncodedConditioning& ec,
                           std::vector<torch::Tensor>& skips) {
  for (const auto& module : *up_blocks) {
    auto block = module->as<ResNetBlockImpl>();
    const size_t n = static_cast<size_t>(block->num_resnets());
    std::vector<torch::Tensor> taken(skips.rbegin(), skips.rbegin() + n);  // the deepest skip first
    skips.resize(skips.size() - n);
    x = block->forward(x, temb, &taken, nullptr, ec.tokens, ec.mask);
  }
  return x;
}

torch::Tensor UNetImpl::output_layer(const torch::Tensor& x) {
  return conv_out(torch::silu(nn::group_norm(norm_out, x)));
}

LevelOutput UNetImpl::denoise(const std::vector<torch::Tensor>& z, size_t n, const torch::Tensor& t,
                              const EncodedConditioning& ec, const torch::Tensor& x_feat) {
  auto temb = time_embedding(t, ec);
  auto x = input_layer(z[n - 1], /*normalize=*/false);
  if (x_feat.defined()) x = x + x_feat;
  std::vector<torch::Tensor> skips;
  x = down(x, temb, ec, skips);
  if (mid_blocks) {
    for (const auto& block : *mid_blocks) x = block->as<ResNetBlockImpl>()->forward(x, temb, nullptr, nullptr, ec.tokens, ec.mask);
  }
  x = up(x, temb, ec, skips);
  return {{output_layer(x)}, x};
}

}  // namespace mdm
