#include <mdm/diffusion/multires_diffusion.h>
#include <mdm/util/device_copy.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h since fmt 11)

namespace mdm {

namespace F = torch::nn::functional;

MultiResDiffusion::MultiResDiffusion(const ModelConfig& model, const DiffusionConfig& d)
    : resolutions_(model.level_resolutions()),
      downsample_(d.downsample),
      shared_noise_(d.shared_noise),
      num_steps_(d.num_train_steps),
      prediction_(parse_prediction(d.prediction)),
      loss_target_(parse_prediction(d.loss_target)) {
  if (num_steps_ < 1) throw ConfigError("diffusion.num_train_steps: continuous-time training is not available; use N ≥ 1");
  if (shared_noise_ && downsample_ != "sum") {
    throw ConfigError("diffusion.shared_noise needs diffusion.downsample: sum (a unit-variance noise pyramid)");
  }
  for (const auto& level : model.level_schedules()) {  // lowest first
    schedules_.emplace_back(level.empty() ? "cosine" : level, num_steps_, d.shift_power);
    gamma_tables_.push_back(torch::tensor(schedules_.back().gammas(), torch::kDouble));
  }
  weights_ = d.loss_weights.empty() ? std::vector<double>(resolutions_.size(), 1.0) : d.loss_weights;
}

std::vector<torch::Tensor> MultiResDiffusion::pyramid(const torch::Tensor& x) const {
  return pyramid(x, resolutions_.size());
}

std::vector<torch::Tensor> MultiResDiffusion::pyramid(const torch::Tensor& x, size_t levels) const {
  if (levels == 0 || levels > resolutions_.size()) {
    throw Error(fmt::format("pyramid: {} levels asked for, the model has {}", levels, resolutions_.size()));
  }
  const int64_t top = resolutions_[levels - 1];
  if (x.dim() != 4 || x.size(2) != top || x.size(3) != top) {
    throw Error(fmt::format("pyramid: expected [B, C, {0}, {0}], got [{1}]", top, fmt::join(x.sizes(), ", ")));
  }
  std::vector<torch::Tensor> out(levels);
  out.back() = x;
  for (size_t l = levels - 1; l-- > 0;) {
    const int64_t ratio = resolutions_[l + 1] / resolutions_[l];
    if (downsample_ == "sum") {
      out[l] = sum_pool(out[l + 1], ratio);
    } else if (downsample_ == "bilinear") {
      out[l] = F::interpolate(x, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{resolutions_[l], resolutions_[l]})
                                     .mode(torch::kBilinear)
                                     .align_corners(false)
                                     .antialias(true));
    } else {
      out[l] = F::avg_pool2d(out[l + 1], F::AvgPool2dFuncOptions(ratio).stride(ratio));
    }
  }
  return out;
}

torch::Tensor sum_pool(const torch::Tensor& x, int64_t ratio) {
  // [B, C, H, W] → [B, C, H/r, W/r]: the r×r box sum / r = the box mean · r.
  return F::avg_pool2d(x, F::AvgPool2dFuncOptions(ratio).stride(ratio)) * static_cast<double>(ratio);
}

torch::Tensor MultiResDiffusion::sample_t(int64_t batch, at::Generator& gen) const {
  return torch::randint(1, num_steps_ + 1, {batch}, gen, torch::kLong);
}

torch::Tensor MultiResDiffusion::gamma(size_t level, const torch::Tensor& t) const {
  // An asynchronous copy: a plain .to() of the host table would wait for the device (util/device_copy.h).
  auto g = util::to_device_async(gamma_tables_.at(level), t.device()).index_select(0, t.to(torch::kLong));
  return g.view({-1, 1, 1, 1});
}

std::vector<torch::Tensor> MultiResDiffusion::draw_noise(const std::vector<std::vector<int64_t>>& shapes,
                                                        const torch::TensorOptions& options, at::Generator& gen) const {
  std::vector<torch::Tensor> eps(shapes.size());
  // With shared noise only the highest level's is drawn (add_noise makes the others its pyramid).
  for (size_t l = shared_noise_ && !shapes.empty() ? shapes.size() - 1 : 0; l < shapes.size(); ++l) {
    eps[l] = torch::randn(shapes[l], gen, options.device(torch::kCPU));
  }
  return eps;
}

NoisyBatch MultiResDiffusion::add_noise(const std::vector<torch::Tensor>& x0, const torch::Tensor& t,
                                        at::Generator& gen) const {
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& level : x0) shapes.push_back(level.sizes().vec());
  auto eps = draw_noise(shapes, torch::TensorOptions().dtype(x0.empty() ? torch::kFloat : x0.front().scalar_type()), gen);
  for (size_t l = 0; l < eps.size(); ++l) {
    if (eps[l].defined()) eps[l] = util::to_device_async(eps[l], x0[l].device());
  }
  return add_noise(x0, t, eps);
}

NoisyBatch MultiResDiffusion::add_noise(const std::vector<torch::Tensor>& x0, const torch::Tensor& t,
                                        const std::vector<torch::Tensor>& eps) const {
  if (x0.empty() || x0.size() > resolutions_.size() || eps.size() != x0.size()) {
    throw Error(fmt::format("add_noise: {} levels of x0 and {} of noise, the model has {}", x0.size(), eps.size(),
                            resolutions_.size()));
  }
  NoisyBatch b{x0, eps, {}, {}, t};
  if (shared_noise_) {  // the lower levels' noise: the sum-pool pyramid of the highest level's
    for (size_t l = x0.size() - 1; l-- > 0;) b.eps[l] = sum_pool(b.eps[l + 1], resolutions_[l + 1] / resolutions_[l]);
  }
  for (size_t l = 0; l < x0.size(); ++l) {
    auto g = gamma(l, t).to(x0[l].device());
    b.gamma.push_back(g.to(x0[l].scalar_type()));
    b.z.push_back((g.sqrt() * x0[l] + (1 - g).sqrt() * b.eps[l]).to(x0[l].scalar_type()));
  }
  return b;
}

LossOutput MultiResDiffusion::loss(const std::vector<torch::Tensor>& outputs, const NoisyBatch& b, size_t levels) const {
  if (levels == 0) levels = resolutions_.size();
  if (outputs.size() < levels) throw Error(fmt::format("loss: {} outputs for {} levels", outputs.size(), levels));
  LossOutput out;
  torch::Tensor total;
  for (size_t l = 0; l < levels; ++l) {
    const auto& g = b.gamma[l];
    auto pred = loss_target_ == prediction_ ? outputs[l] : [&] {
      switch (loss_target_) {
        case Prediction::V: return to_v(prediction_, outputs[l], b.z[l], g);
        case Prediction::Eps: return to_eps(prediction_, outputs[l], b.z[l], g);
        case Prediction::X0: return to_x0(prediction_, outputs[l], b.z[l], g);
      }
      return outputs[l];
    }();
    auto per_sample = (pred.to(torch::kFloat) - target(loss_target_, b.x0[l], b.eps[l], g).to(torch::kFloat))
                          .square()
                          .flatten(1)
                          .mean(1);  // [B]
    out.levels.push_back(per_sample.mean().detach());
    auto weighted = weights_[l] * per_sample;
    total = total.defined() ? total + weighted : weighted;
  }
  out.loss = total.mean();
  return out;
}

torch::Tensor condition_dropout_mask(int64_t batch, double probability, at::Generator& gen) {
  return torch::rand({batch}, gen) < probability;
}

}  // namespace mdm
