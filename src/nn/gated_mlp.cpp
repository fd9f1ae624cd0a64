#include <mdm/nn/gated_mlp.h>

namespace mdm::nn {

namespace tnn = torch::nn;

tnn::Linear dimr_linear(int64_t in, int64_t out, bool bias) {
  tnn::Linear l(tnn::LinearOptions(in, out).bias(bias));
  torch::NoGradGuard no_grad;
  l->weight.normal_(0.0, 0.02).clamp_(-2.0, 2.0);
  if (bias) l->bias.zero_();
  return l;
}

GatedMLPImpl::GatedMLPImpl(int64_t dim, int64_t hidden) {
  norm = register_module("norm", TDRMSNorm(dim));
  w0 = register_module("w0", dimr_linear(dim, hidden));
  w1 = register_module("w1", dimr_linear(dim, hidden));
  w2 = register_module("w2", dimr_linear(hidden, dim));
}

torch::Tensor GatedMLPImpl::forward(const torch::Tensor& x, const torch::Tensor& time) {
  auto n = norm(x, time);
  return w2(torch::gelu(w0(n)) * w1(n));
}

}  // namespace mdm::nn
