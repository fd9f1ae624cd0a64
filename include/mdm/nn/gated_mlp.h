// DiMR's MLP block (the reference's MLPBlock): TD-RMSNorm, then a gated (GLU) MLP,
// y = w2(GELU(w0(n)) ⊙ w1(n)) with n = TDRMSNorm(x, t). The residual is added by the block using it.
#pragma once

#include <mdm/nn/td_norm.h>
#include <torch/torch.h>

namespace mdm::nn {

// Linear layers initialised as DiMR's (truncated normal, std 0.02, |w| ≤ 2 — never reached at that std —
// and a zero bias).
torch::nn::Linear dimr_linear(int64_t in, int64_t out, bool bias = true);

class GatedMLPImpl : public torch::nn::Module {
 public:
  GatedMLPImpl(int64_t dim, int64_t hidden_dim);
  // x: [B, ..., dim] channel-last; time: [B] or [1] (t_in of td_norm.h).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& time);

  TDRMSNorm norm{nullptr};
  torch::nn::Linear w0{nullptr}, w1{nullptr}, w2{nullptr};
};
TORCH_MODULE(GatedMLP);

}  // namespace mdm::nn
