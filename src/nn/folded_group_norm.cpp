#include <mdm/nn/folded_group_norm.h>
#include <mdm/nn/pointwise.h>

#include <c10/core/impl/LocalDispatchKeySet.h>

#include <atomic>

namespace mdm::nn {

namespace {
std::atomic<InferenceFusion> g_fusion{InferenceFusion::Auto};
}  // namespace

void set_inference_fusion(InferenceFusion fusion) { g_fusion = fusion; }
InferenceFusion inference_fusion() { return g_fusion; }

FusionPlan inference_fusion_plan(const torch::Tensor& x) {
  FusionPlan plan;
  if (torch::GradMode::is_enabled()) return plan;
  switch (g_fusion.load()) {
    case InferenceFusion::Off:
      break;
    case InferenceFusion::Always:
      plan = {true, true, true};
      break;
    case InferenceFusion::Auto:
      // Channels-last activations keep the unfused ops: the statistics kernel would need a copy of them.
      plan.active = x.is_cuda() && x.is_contiguous() && x.numel() >= kFusionMinElements;
      plan.fold_bias = plan.active;
      plan.fused_kernels = plan.active && pointwise_backend(x) == "jiterator";
      break;
  }
  return plan;
}

std::pair<torch::Tensor, torch::Tensor> channel_moments(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 3, "channel_moments: expected [B, C, ...], got ", x.sizes());
  const int64_t B = x.size(0), C = x.size(1);
  if (x.is_cuda()) {
    // One Welford pass reading x in its own dtype, float32 results: the statistics kernel of
    // SyncBatchNorm, on x seen as one sample with B·C channels. It returns 1/sqrt(var + eps); the tiny eps
    // keeps a constant channel finite (var comes back as 1e-30) and is lost in rounding anywhere else.
    auto [mean, invstd] = at::batch_norm_stats(x.reshape({1, B * C, -1}), /*eps=*/1e-30);
    return {mean.view({B, C}), invstd.pow(-2).view({B, C})};
  }
  auto [var, mean] = at::var_mean(x.reshape({B, C, -1}).to(torch::kFloat), at::IntArrayRef{2}, /*unbiased=*/false,
                                  /*keepdim=*/false);
  return {mean, var};
}

torch::Tensor folded_group_norm_silu(const torch::Tensor& h, const torch::nn::GroupNorm& norm,
                                     const torch::Tensor& bias, const torch::Tensor& scale,
                                     const torch::Tensor& shift) {
  // Everything but the two passes over h works on [B, C] values: few ops, for the launches they cost.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const auto& o = norm->options;
  const int64_t B = h.size(0), C = h.size(1), G = o.num_groups();
  TORCH_CHECK(C == o.num_channels() && C % G == 0, "folded_group_norm_silu: ", C, " channels for a GroupNorm of ",
              o.num_channels(), " channels in ", G, " groups");
  const std::vector<int64_t> grouped{B, G, C / G}, per_group{1, G, C / G};
  const auto as_grouped = [&](const torch::Tensor& t) { return t.to(torch::kFloat).reshape(grouped); };
  auto [mean, var] = channel_moments(h);
  const auto fbias = bias.defined() ? bias.to(torch::kFloat).view(per_group) : torch::Tensor();
  auto m = mean.view(grouped);
  const auto v = var.view(grouped);
  if (bias.defined()) m = m + fbias;
  // Group statistics from channel statistics (Chan): var_g = mean_c(var_c + (mean_c − mean_g)²).
  const auto group_mean = m.mean(-1, /*keepdim=*/true);
  const auto d = m - group_mean;
  const auto rstd = torch::addcmul(v, d, d).mean(-1, /*keepdim=*/true).add_(o.eps()).rsqrt_();
  // norm(h + bias) = (h + bias − mean_g)·rstd·γ + β = h·a + (bias − mean_g)·a + β, with a = rstd·γ.
  torch::Tensor a, b;
  const auto centre = bias.defined() ? fbias - group_mean : -group_mean;
  if (o.affine()) {
    a = rstd * norm->weight.to(torch::kFloat).view(per_group);
    b = torch::addcmul(norm->bias.to(torch::kFloat).view(per_group), centre, a);
  } else {
    a = rstd.expand(grouped);
    b = centre * a;
  }
  if (scale.defined()) {
    const auto s = as_grouped(scale);
    a = a * s;
    b = b * s;
  }
  if (shift.defined()) b = b + as_grouped(shift);
  std::vector<int64_t> shape(static_cast<size_t>(h.dim()), 1);
  shape[0] = B;
  shape[1] = C;
  return scale_shift_silu(h, a.reshape(shape), b.reshape(shape));
}

}  // namespace mdm::nn
