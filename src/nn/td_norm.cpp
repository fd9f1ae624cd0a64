#include <mdm/nn/td_norm.h>

namespace mdm::nn {

TimeDependentParameterImpl::TimeDependentParameterImpl(int64_t size, double init) {
  param0 = register_parameter("param0", torch::full({size}, init));
  param1 = register_parameter("param1", torch::full({size}, init));
  nodecay_weight = register_parameter("nodecay_weight", torch::zeros({size}));
  nodecay_bias = register_parameter("nodecay_bias", torch::zeros({size}));
}

torch::Tensor TimeDependentParameterImpl::forward(const torch::Tensor& time) {
  auto t = time.reshape({-1, 1}).to(param0.scalar_type());            // [B, 1]
  auto g = torch::sigmoid(t * (nodecay_weight + 1) + nodecay_bias);  // [B, P]
  return param1 + g * (param0 - param1);                             // g·p0 + (1 − g)·p1
}

torch::Tensor broadcast_per_sample(const torch::Tensor& p, const torch::Tensor& x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape.front() = p.size(0);
  shape.back() = p.size(1);
  return p.view(shape);
}

TDLayerNormImpl::TDLayerNormImpl(int64_t d, double e) : dim(d), eps(e) {
  weight = register_module("weight", TimeDependentParameter(d, 1.0));
  bias = register_module("bias", TimeDependentParameter(d, 0.0));
}

torch::Tensor TDLayerNormImpl::forward(const torch::Tensor& x, const torch::Tensor& time) {
  auto y = torch::layer_norm(x, {dim}, {}, {}, eps);
  return broadcast_per_sample(bias(time), x) + broadcast_per_sample(weight(time), x) * y;
}

TDRMSNormImpl::TDRMSNormImpl(int64_t d, double e) : dim(d), eps(e) {
  scale = register_module("scale", TimeDependentParameter(d, 1.0));
}

torch::Tensor TDRMSNormImpl::forward(const torch::Tensor& x, const torch::Tensor& time) {
  auto rms = x.norm(2, -1, /*keepdim=*/true) / std::sqrt(static_cast<double>(dim));
  return broadcast_per_sample(scale(time), x) * (x / (rms + eps));
}

}  // namespace mdm::nn
