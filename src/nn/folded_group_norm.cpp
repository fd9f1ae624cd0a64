#include <mdm/nn/folded_group_norm.h>
#include <mdm/nn/fusion_check.h>
#include <mdm/nn/pointwise.h>
#include <mdm/util/compat.h>

#include <c10/core/impl/LocalDispatchKeySet.h>

#include <array>
#include <atomic>
#include <stdexcept>

namespace mdm::nn {

namespace {

std::atomic<Fusion> g_inference_fusion{Fusion::Auto};
std::atomic<Fusion> g_training_fusion{Fusion::Auto};

}  // namespace

void set_inference_fusion(Fusion fusion) { g_inference_fusion = fusion; }
Fusion inference_fusion() { return g_inference_fusion; }
void set_training_fusion(Fusion fusion) { g_training_fusion = fusion; }
Fusion training_fusion() { return g_training_fusion; }

std::string to_string(Fusion fusion) {
  switch (fusion) {
    case Fusion::Off:
      return "off";
    case Fusion::Auto:
      return "auto";
    case Fusion::Always:
      return "always";
  }
  return "?";
}

Fusion parse_fusion(const std::string& name) {
  for (const auto f : {Fusion::Off, Fusion::Auto, Fusion::Always}) {
    if (name == to_string(f)) return f;
  }
  throw std::invalid_argument("fusion setting '" + name + "': expected off, auto or always");
}

bool channels_last(const torch::Tensor& x) {
  return x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(torch::MemoryFormat::ChannelsLast);
}

FusionPlan fusion_plan(const torch::Tensor& x) {
  FusionPlan plan;
  switch ((torch::GradMode::is_enabled() ? g_training_fusion : g_inference_fusion).load()) {
    case Fusion::Off:
      break;
    case Fusion::Always:
      plan = {true, true, true};
      break;
    case Fusion::Auto:
      // Channels-last activations take the fused path in inference only: their statistics come from one
      // kernel per sample there (channel_moments), and training's backward reduction would need a copy of
      // them. Without the fused kernels, their ATen stand-ins cost more passes than they save. And only where
      // the fused path has shown on this device and dtype that it gives the unfused ops' numbers
      // (nn/fusion_check.h; checked once, the first time it is asked).
      plan.active = x.is_cuda() && (x.is_contiguous() || (!torch::GradMode::is_enabled() && channels_last(x))) &&
                    x.numel() >= kFusionMinElements && pointwise_backend(x) == "jiterator" &&
                    fusion_verified(x.device(), x.scalar_type());
      plan.fold_bias = plan.fused_kernels = plan.active;
      break;
  }
  return plan;
}

std::pair<torch::Tensor, torch::Tensor> channel_moments(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 3, "channel_moments: expected [B, C, ...], got ", x.sizes());
  const int64_t B = x.size(0), C = x.size(1);
  if (x.is_cuda() && x.scalar_type() != torch::kDouble) {
    // One Welford pass reading x in its own dtype, float32 results: the statistics kernel of
    // SyncBatchNorm, on x seen as one sample with B·C channels. It returns 1/sqrt(var + eps); the tiny eps
    // keeps a constant channel finite (var comes back as 1e-30) and is lost in rounding anywhere else.
    if (channels_last(x)) {
      // [B, H, W, C] in memory has no view as one sample of B·C channels; the kernel's channels-last form
      // reduces over the batch too, so it runs once per sample (each a [1, C, H, W] view, no copy).
      std::vector<torch::Tensor> means, invstds;
      for (int64_t b = 0; b < B; ++b) {
        auto [mean, invstd] = at::batch_norm_stats(x.narrow(0, b, 1), /*eps=*/1e-30);
        means.push_back(mean);
        invstds.push_back(invstd);
      }
      return {torch::stack(means), torch::stack(invstds).pow(-2)};
    }
    auto [mean, invstd] = at::batch_norm_stats(x.reshape({1, B * C, -1}), /*eps=*/1e-30);
    return {mean.view({B, C}), invstd.pow(-2).view({B, C})};
  }
  auto [var, mean] = at::var_mean(x.reshape({B, C, -1}).to(arithmetic_dtype(x)), at::IntArrayRef{2},
                                  /*unbiased=*/false, /*keepdim=*/false);
  return {mean, var};
}

std::pair<torch::Tensor, torch::Tensor> channel_gradient_sums(const torch::Tensor& dz, const torch::Tensor& x,
                                                              const torch::Tensor& mean) {
  TORCH_CHECK(dz.sizes() == x.sizes() && dz.scalar_type() == x.scalar_type() && x.dim() >= 3,
              "channel_gradient_sums: dz ", dz.sizes(), " ", dz.scalar_type(), " and x ", x.sizes(), " ",
              x.scalar_type(), " must be [B, C, ...] of one shape and dtype");
  const int64_t B = x.size(0), C = x.size(1);
  if (x.is_cuda() && x.scalar_type() != torch::kDouble) {
    // SyncBatchNorm's backward reduction: both sums in one pass over dz and x. In bf16 or half it passes
    // each term and the partial sums of its warp reduction through the inputs' dtype (ATen's Float2 is
    // constructed from it), ~0.5 % on the sums. The input's gradient sees that divided by the group's size;
    // the gradients of the norm's affine and of the time scale-shift, which are these sums, see it whole:
    // about one bf16 rounding of a single value, inside the fusion check's bound (nn/fusion_check.h). Exact
    // float32 sums would cost several more passes over each activation (a float32 product, then its sum).
    // invstd only scales the weight gradient, which is not asked for. The weight is passed for its dtype
    // alone: ATen reads mean in the weight's dtype when it differs from x's, and without a weight in x's own,
    // so a bf16 x with no weight would need bf16 statistics ("Expected mean to have type BFloat16 but got
    // Float").
    const auto flat_mean = mean.reshape({B * C});
    const auto ones = torch::ones_like(flat_mean);
    auto sums = at::batch_norm_backward_reduce(dz.reshape({1, B * C, -1}), x.reshape({1, B * C, -1}), flat_mean,
                                               /*invstd=*/ones, /*weight=*/ones, /*input_g=*/true,
                                               /*weight_g=*/false, /*bias_g=*/false);
    return {std::get<0>(sums).view({B, C}), std::get<1>(sums).view({B, C})};
  }
  const auto op = mean.scalar_type();
  const auto d = dz.reshape({B, C, -1}).to(op);
  return {d.sum(-1), (d * (x.reshape({B, C, -1}).to(op) - mean.unsqueeze(-1))).sum(-1)};
}

namespace {

// The optional operands in the arithmetic dtype, as [1 or B, G, C/G] (undefined where absent).
struct Operands {
  torch::Tensor bias, weight, beta, scale, shift;
};

// The folded form's numbers, in the arithmetic dtype, [B, G, C/G] (rstd [B, G, 1]).
struct Folding {
  torch::Tensor channel_mean;  // mean of h per (sample, channel)
  torch::Tensor rstd;          // 1/sqrt(var + eps) of h + bias per (sample, group)
  torch::Tensor centre;        // group mean of h + bias, less the bias: norm(h + bias) ∝ h − centre
  torch::Tensor a, b;          // y = silu((h − centre)·a + b)
};

Operands operands(const torch::Tensor& h, int64_t groups, const torch::Tensor& bias, const torch::Tensor& weight,
                  const torch::Tensor& beta, const torch::Tensor& scale, const torch::Tensor& shift) {
  const int64_t B = h.size(0), C = h.size(1);
  const auto dtype = arithmetic_dtype(h);
  const std::vector<int64_t> per_sample{B, groups, C / groups}, per_group{1, groups, C / groups};
  auto as = [dtype](const torch::Tensor& t, const std::vector<int64_t>& shape) {
    return t.defined() ? t.to(dtype).reshape(shape) : t;
  };
  return {as(bias, per_group), as(weight, per_group), as(beta, per_group), as(scale, per_sample),
          as(shift, per_sample)};
}

Folding fold(const torch::Tensor& h, int64_t groups, double eps, const Operands& p) {
  const int64_t B = h.size(0), C = h.size(1);
  const std::vector<int64_t> grouped{B, groups, C / groups};
  auto [mean, var] = channel_moments(h);
  Folding f;
  f.channel_mean = mean.view(grouped);
  const auto m = p.bias.defined() ? f.channel_mean + p.bias : f.channel_mean;
  // Group statistics from channel statistics (Chan): var_g = mean_c(var_c + (mean_c − mean_g)²).
  const auto group_mean = m.mean(-1, /*keepdim=*/true);
  const auto d = m - group_mean;
  f.rstd = torch::addcmul(var.view(grouped), d, d).mean(-1, /*keepdim=*/true).add_(eps).rsqrt_();
  // norm(h + bias)·s + t = ((h + bias − mean_g)·rstd·γ + β)·s + t = (h − centre)·a + b, with
  // centre = mean_g − bias, a = rstd·γ·s, b = β·s + t.
  f.centre = (p.bias.defined() ? group_mean - p.bias : group_mean).expand(grouped);
  f.a = (p.weight.defined() ? f.rstd * p.weight : f.rstd).expand(grouped);
  f.b = p.beta.defined() ? p.beta.expand(grouped) : torch::zeros(grouped, f.rstd.options());
  if (p.scale.defined()) {
    f.a = f.a * p.scale;
    f.b = f.b * p.scale;
  }
  if (p.shift.defined()) f.b = f.b + p.shift;
  return f;
}

// [B, C, 1, ...]: per-(sample, channel) values broadcasting against h.
std::vector<int64_t> broadcast_shape(const torch::Tensor& h) {
  std::vector<int64_t> shape(static_cast<size_t>(h.dim()), 1);
  shape[0] = h.size(0);
  shape[1] = h.size(1);
  return shape;
}

using compat::OptionalTensor;
torch::Tensor value(const OptionalTensor& t) { return t.has_value() ? *t : torch::Tensor(); }
OptionalTensor optional(const torch::Tensor& t) { return t.defined() ? OptionalTensor(t) : OptionalTensor(); }

// Inputs: h, bias, norm weight, norm bias, scale, shift; the last five optional (autograd's Function takes
// an absent tensor as an empty optional, not as an undefined tensor, and gives it no edge).
struct FoldedGroupNormSiluFunction : torch::autograd::Function<FoldedGroupNormSiluFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h,
                               const OptionalTensor& bias_in, const OptionalTensor& weight_in,
                               const OptionalTensor& beta_in, const OptionalTensor& scale_in,
                               const OptionalTensor& shift_in, int64_t groups, double eps) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const auto bias = value(bias_in), weight = value(weight_in), beta = value(beta_in), scale = value(scale_in),
               shift = value(shift_in);
    const auto p = operands(h, groups, bias, weight, beta, scale, shift);
    const auto f = fold(h, groups, eps, p);
    // Backward passes the kernel the same centre, a and b: it rounds them as forward did and
    // differentiates at the pre-activation forward computed.
    const auto shape = broadcast_shape(h);
    const auto centre = f.centre.reshape(shape), a = f.a.reshape(shape), b = f.b.reshape(shape);
    ctx->save_for_backward({h, bias, weight, beta, scale, shift, f.channel_mean, f.rstd, centre, a, b});
    ctx->saved_data["groups"] = groups;
    return scale_shift_silu(h, centre, a, b);
  }

  // With x̂ = (h − centre)·rstd (the normalised h + bias), n = γ·x̂ + β, z = n·s + t, y = silu(z) and the
  // sums S1 = Σdz, S2 = Σdz·x̂ per (sample, channel): dt = S1, ds = γ·S2 + β·S1, dγ = Σ_b s·S2,
  // dβ = Σ_b s·S1, and GroupNorm's backward with g = γ·s, N = (C/G)·L elements per group,
  // M1 = Σ_c g·S1 / N and M2 = Σ_c g·S2 / N: dh = rstd·(g·dz − M1 − x̂·M2) = dz·α + (h − centre)·β' + γ'
  // per (sample, channel), with α = rstd·g, β' = −rstd²·M2, γ' = −rstd·M1. dbias = Σ_b Σ_L dh =
  // Σ_b (α·S1 + β'·L·(mean_c(h) − centre) + L·γ').
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const auto saved = ctx->get_saved_variables();
    const auto &h = saved[0], &bias = saved[1], &weight = saved[2], &beta = saved[3], &scale = saved[4],
               &shift = saved[5], &channel_mean = saved[6], &rstd = saved[7], &centre = saved[8], &a = saved[9],
               &b = saved[10];
    const int64_t groups = ctx->saved_data["groups"].toInt();
    const int64_t B = h.size(0), C = h.size(1), L = h.numel() / (B * C);
    const std::vector<int64_t> grouped{B, groups, C / groups};
    const auto p = operands(h, groups, bias, weight, beta, scale, shift);
    // Autograd numbers the edges of the present inputs only.
    std::array<bool, 6> needs{};
    for (size_t i = 0, edge = 0; i < needs.size(); ++i) {
      if (saved[i].defined()) needs[i] = ctx->needs_input_grad(edge++);
    }

    const auto dz = scale_shift_silu_backward(grads[0].contiguous(), h, centre, a, b);
    auto [sum_dz, sum_dz_hmu] = channel_gradient_sums(dz, h, channel_mean.reshape({B, C}));
    const auto S1 = sum_dz.view(grouped);
    // Σdz·x̂ = rstd·Σdz·(h − mean_c + mean_c − centre).
    const auto offset = channel_mean - centre.reshape(grouped);
    const auto S2 = rstd * torch::addcmul(sum_dz_hmu.view(grouped), offset, S1);

    auto like = [](const torch::Tensor& grad, const torch::Tensor& input) {
      return grad.reshape(input.sizes()).to(input.scalar_type());
    };
    torch::Tensor dh, dbias, dweight, dbeta, dscale, dshift;
    if (needs[5]) dshift = like(S1, shift);
    if (needs[4]) {
      auto ds = p.weight.defined() ? S2 * p.weight : S2;
      if (p.beta.defined()) ds = torch::addcmul(ds, S1, p.beta);
      dscale = like(ds, scale);
    }
    if (needs[2]) dweight = like((p.scale.defined() ? p.scale * S2 : S2).sum(0), weight);
    if (needs[3]) dbeta = like((p.scale.defined() ? p.scale * S1 : S1).sum(0), beta);
    if (needs[0] || needs[1]) {
      torch::Tensor g = p.weight.defined() ? p.weight.expand(grouped) : torch::ones(grouped, S1.options());
      if (p.scale.defined()) g = g * p.scale;
      const double n = static_cast<double>((C / groups) * L);
      const auto m1 = (g * S1).sum(-1, /*keepdim=*/true).div_(n);
      const auto m2 = (g * S2).sum(-1, /*keepdim=*/true).div_(n);
      const auto alpha = rstd * g;
      const auto beta_h = (-(rstd * rstd * m2)).expand(grouped);
      const auto gamma = (-(rstd * m1)).expand(grouped);
      const auto shape = broadcast_shape(h);
      if (needs[0]) {
        dh = affine_combination(dz, h, centre, alpha.reshape(shape), beta_h.reshape(shape), gamma.reshape(shape));
      }
      if (needs[1]) {
        const auto per_channel = alpha * S1 + static_cast<double>(L) * (beta_h * offset + gamma);
        dbias = like(per_channel.sum(0), bias);
      }
    }
    return {dh, dbias, dweight, dbeta, dscale, dshift, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor folded_group_norm_silu(const torch::Tensor& h, const torch::nn::GroupNorm& norm,
                                     const torch::Tensor& bias, const torch::Tensor& scale,
                                     const torch::Tensor& shift) {
  const auto& o = norm->options;
  const int64_t C = h.size(1), G = o.num_groups();
  TORCH_CHECK(C == o.num_channels() && C % G == 0, "folded_group_norm_silu: ", C, " channels for a GroupNorm of ",
              o.num_channels(), " channels in ", G, " groups");
  const torch::Tensor weight = o.affine() ? norm->weight : torch::Tensor();
  const torch::Tensor beta = o.affine() ? norm->bias : torch::Tensor();
  const bool differentiate = torch::GradMode::is_enabled() && [&] {
    for (const auto* t : {&h, &bias, &weight, &beta, &scale, &shift}) {
      if (t->defined() && t->requires_grad()) return true;
    }
    return false;
  }();
  if (differentiate) {
    return FoldedGroupNormSiluFunction::apply(h, optional(bias), optional(weight), optional(beta), optional(scale),
                                              optional(shift), G, o.eps());
  }
  // Everything but the two passes over h works on [B, C] values: few ops, for the launches they cost.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const auto f = fold(h, G, o.eps(), operands(h, G, bias, weight, beta, scale, shift));
  const auto shape = broadcast_shape(h);
  return scale_shift_silu(h, f.centre.reshape(shape), f.a.reshape(shape), f.b.reshape(shape));
}

}  // namespace mdm::nn
