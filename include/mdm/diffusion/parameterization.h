// What the network predicts and how to convert between the three parameterisations
// (formulas.md "Forward process and parameterisations"), with γ = ᾱ the signal variance:
//   z = √γ·x0 + √(1−γ)·ε,  v = √γ·ε − √(1−γ)·x0,  x0 = √γ·z − √(1−γ)·v,  ε = √(1−γ)·z + √γ·v.
// γ is a tensor broadcastable to z (e.g. [B, 1, 1, 1]) or a double.
#pragma once

#include <torch/torch.h>

#include <string>

namespace mdm {

enum class Prediction { V, Eps, X0 };

Prediction parse_prediction(const std::string& name);  // "v" | "eps" | "x0"; throws ConfigError
std::string to_string(Prediction p);

// From the network's output in parameterisation `p` to x0, ε or v.
torch::Tensor to_x0(Prediction p, const torch::Tensor& out, const torch::Tensor& z, const torch::Tensor& gamma);
torch::Tensor to_eps(Prediction p, const torch::Tensor& out, const torch::Tensor& z, const torch::Tensor& gamma);
torch::Tensor to_v(Prediction p, const torch::Tensor& out, const torch::Tensor& z, const torch::Tensor& gamma);
// The value parameterisation `p` takes for a known (x0, ε) pair: the training target.
torch::Tensor target(Prediction p, const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& gamma);

// The single conversions.
torch::Tensor x0_from_v(const torch::Tensor& z, const torch::Tensor& v, const torch::Tensor& gamma);
torch::Tensor eps_from_v(const torch::Tensor& z, const torch::Tensor& v, const torch::Tensor& gamma);
torch::Tensor x0_from_eps(const torch::Tensor& z, const torch::Tensor& eps, const torch::Tensor& gamma);
torch::Tensor eps_from_x0(const torch::Tensor& z, const torch::Tensor& x0, const torch::Tensor& gamma);
torch::Tensor v_from_x0_eps(const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& gamma);

}  // namespace mdm
