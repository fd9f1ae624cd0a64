// Time-dependent normalisation of DiMR (§3.2, formulas.md "DiMR"; dimr-facts.md): a norm's scale (and shift)
// is interpolated between two learned parameter sets by a time gate,
//   g = sigmoid(w ⊙ t_in + b),   p(t_in) = g·p0 + (1 − g)·p1,
// with t_in = λ/4 per sample. Parameter names are the reference's (qihao067/DiMR TimeDependentParameter):
// param0 = p0, param1 = p1, nodecay_weight = w − 1, nodecay_bias = b (so a fresh gate has w = 1, b = 0).
#pragma once

#include <torch/torch.h>

#include <vector>

namespace mdm::nn {

// A [size] parameter interpolated in time; p0 = p1 = `init` at construction.
class TimeDependentParameterImpl : public torch::nn::Module {
 public:
  TimeDependentParameterImpl(int64_t size, double init);
  // time: [B] (or [1], shared by the batch) → [B, size] (dtype of param0).
  torch::Tensor forward(const torch::Tensor& time);

  torch::Tensor param0, param1, nodecay_weight, nodecay_bias;
};
TORCH_MODULE(TimeDependentParameter);

// LayerNorm over the last dimension with a time-dependent scale (weight) and shift (bias):
// y = (x − mean)/√(var + eps) · weight(t) + bias(t). x: [B, ..., C]; time: [B] or [1].
class TDLayerNormImpl : public torch::nn::Module {
 public:
  explicit TDLayerNormImpl(int64_t dim, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& time);

  int64_t dim;
  double eps;
  TimeDependentParameter weight{nullptr}, bias{nullptr};
};
TORCH_MODULE(TDLayerNorm);

// RMSNorm over the last dimension with a time-dependent scale (no shift), as the reference:
// y = x / (‖x‖₂/√C + eps) · scale(t). x: [B, ..., C]; time: [B] or [1].
class TDRMSNormImpl : public torch::nn::Module {
 public:
  explicit TDRMSNormImpl(int64_t dim, double eps = 1e-8);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& time);

  int64_t dim;
  double eps;
  TimeDependentParameter scale{nullptr};
};
TORCH_MODULE(TDRMSNorm);

// [B, P] per-sample parameters → shaped to multiply x [B, ..., P] (or [1, P] → broadcast over the batch).
torch::Tensor broadcast_per_sample(const torch::Tensor& p, const torch::Tensor& x);

}  // namespace mdm::nn
