#include <mdm/diffusion/sampler.h>
#include <mdm/util/error.h>

#include <fmt/format.h>

namespace mdm {

std::unique_ptr<Sampler> make_sampler(const SamplerOptions& o) {
  if (o.sampler == "ancestral") return make_ancestral_sampler();
  if (o.sampler == "ddim") return make_ddim_sampler(o.eta);
  if (o.sampler == "dpmsolver++") return make_dpm_solver_pp();
  throw ConfigError(fmt::format("sampler '{}' is not known (ancestral | ddim | dpmsolver++)", o.sampler));
}

std::string resolve_spacing(const SamplerOptions& o) {
  if (o.spacing != "auto") return o.spacing;
  return o.sampler == "ancestral" ? "reference" : "trailing";
}

std::vector<torch::Tensor> run_sampler(const DenoiseFn& denoise, const std::vector<NoiseSchedule>& schedules,
                                       std::vector<torch::Tensor> z, const SamplerOptions& options,
                                       NoiseSource& noise, Sampler* custom) {
  if (schedules.size() != z.size()) {
    throw Error(fmt::format("sampler: {} schedules for {} levels", schedules.size(), z.size()));
  }
  const int64_t N = schedules.front().num_steps();
  for (const auto& s : schedules) {
    if (s.num_steps() != N || s.continuous()) throw Error("sampler: every level needs the same discrete schedule length");
  }
  const auto ts = sampling_timesteps(N, options.steps, resolve_spacing(options));
  std::unique_ptr<Sampler> owned = custom ? nullptr : make_sampler(options);
  Sampler* sampler = custom ? custom : owned.get();
  sampler->reset(z.size());
  const int64_t K = options.steps;
  for (int64_t i = 0; i < K; ++i) {
    const int64_t t = ts[i], s = ts[i + 1];
    const bool last = i == K - 1;
    const auto out = denoise(z, t);
    if (out.size() != z.size()) throw Error(fmt::format("sampler: the network returned {} levels, expected {}", out.size(), z.size()));
    std::vector<torch::Tensor> x0s;
    for (size_t l = 0; l < z.size(); ++l) {
      const double gt = schedules[l].gamma(t), gs = schedules[l].gamma(s);
      auto x0 = apply_threshold(to_x0(options.prediction, out[l], z[l], torch::scalar_tensor(gt, torch::kDouble)),
                                options.threshold);
      z[l] = sampler->update(l, z[l], x0, gt, gs, last, noise);
      x0s.push_back(std::move(x0));
    }
    if (options.callback && !options.callback(StepInfo{i + 1, K, t, s, &x0s})) {
      throw Cancelled(fmt::format("sampling cancelled after step {} of {}", i + 1, K));
    }
  }
  if (options.clip_output) {
    for (auto& level : z) level = level.clamp(-1.0, 1.0);
  }
  return z;
}

}  // namespace mdm
