#include <mdm/train/train_step.h>
#include <mdm/util/compat.h>

#include <cmath>

namespace mdm::train {

LossOutput training_loss(Denoiser& model, const MultiResDiffusion& diffusion, const NoisyBatch& noisy,
                         const Conditioning& cond, size_t levels, bool autocast) {
  compat::CudaAutocast scope(autocast, torch::kBFloat16);
  const auto device = noisy.z.front().device();
  auto out = model.forward(noisy.z, (noisy.t - 1).to(torch::kFloat).to(device), cond);
  return diffusion.loss(out, noisy, levels);
}

UpdateStats optimizer_update(Adam& optimizer, Ema& ema, const torch::nn::Module& model, double lr, double grad_clip,
                             bool loss_finite) {
  UpdateStats s;
  s.finite = loss_finite;
  if (s.finite) {
    s.grad_norm = clip_grad_norm(optimizer.params(), grad_clip);
    s.finite = std::isfinite(s.grad_norm);
  }
  if (s.finite) {
    optimizer.step(lr);
    ema.update(model);
  }
  optimizer.zero_grad();
  return s;
}

}  // namespace mdm::train
