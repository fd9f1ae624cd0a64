#include <mdm/models/state_dict.h>
#include <mdm/train/ema.h>
#include <mdm/util/error.h>

#include <fmt/format.h>

namespace mdm::train {

namespace {
std::vector<torch::Tensor> tensors_of(const torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (auto& [name, t] : state_dict(m)) out.push_back(t);
  return out;
}
}  // namespace

Ema::Ema(const torch::nn::Module& model, std::shared_ptr<Denoiser> shadow, double decay)
    : shadow_(std::move(shadow)), shadow_tensors_(tensors_of(*shadow_)), decay_(decay) {
  for (auto& p : shadow_->parameters()) p.requires_grad_(false);
  copy_from(model);
}

void Ema::copy_from(const torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  auto src = tensors_of(model);
  if (src.size() != shadow_tensors_.size()) {
    throw Error(fmt::format("EMA: the model has {} tensors, its average {}", src.size(), shadow_tensors_.size()));
  }
  for (size_t i = 0; i < src.size(); ++i) shadow_tensors_[i].copy_(src[i]);
}

void Ema::update(const torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  auto src = tensors_of(model);
  // Floating tensors averaged through multi-tensor ops (a few kernel launches per list on CUDA instead of
  // two per tensor); integer buffers (counters) are copied, not averaged.
  std::vector<torch::Tensor> avg, cur;
  for (size_t i = 0; i < src.size(); ++i) {
    auto& e = shadow_tensors_[i];
    if (e.is_floating_point()) {
      avg.push_back(e);
      cur.push_back(src[i].detach());
    } else {
      e.copy_(src[i]);
    }
  }
  if (avg.empty()) return;
  at::_foreach_mul_(avg, decay_);
  at::_foreach_add_(avg, cur, 1 - decay_);
}

}  // namespace mdm::train
