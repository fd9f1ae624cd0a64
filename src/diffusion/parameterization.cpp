#include <mdm/diffusion/parameterization.h>
#include <mdm/util/error.h>

#include <fmt/format.h>

namespace mdm {

Prediction parse_prediction(const std::string& name) {
  if (name == "v") return Prediction::V;
  if (name == "eps") return Prediction::Eps;
  if (name == "x0") return Prediction::X0;
  throw ConfigError(fmt::format("prediction '{}' is not known (v | eps | x0)", name));
}

std::string to_string(Prediction p) {
  switch (p) {
    case Prediction::V: return "v";
    case Prediction::Eps: return "eps";
    case Prediction::X0: return "x0";
  }
  return "?";
}

torch::Tensor x0_from_v(const torch::Tensor& z, const torch::Tensor& v, const torch::Tensor& g) {
  return g.sqrt() * z - (1 - g).sqrt() * v;
}
torch::Tensor eps_from_v(const torch::Tensor& z, const torch::Tensor& v, const torch::Tensor& g) {
  return (1 - g).sqrt() * z + g.sqrt() * v;
}
torch::Tensor x0_from_eps(const torch::Tensor& z, const torch::Tensor& eps, const torch::Tensor& g) {
  return (z - (1 - g).sqrt() * eps) / g.sqrt();
}
torch::Tensor eps_from_x0(const torch::Tensor& z, const torch::Tensor& x0, const torch::Tensor& g) {
  return (z - g.sqrt() * x0) / (1 - g).sqrt();
}
torch::Tensor v_from_x0_eps(const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& g) {
  return g.sqrt() * eps - (1 - g).sqrt() * x0;
}

torch::Tensor to_x0(Prediction p, const torch::Tensor& out, const torch::Tensor& z, const torch::Tensor& g) {
  switch (p) {
    case Prediction::V: return x0_from_v(z, out, g);
    case Prediction::Eps: return x0_from_eps(z, out, g);
    case Prediction::X0: return out;
  }
  return out;
}

torch::Tensor to_eps(Prediction p, const torch::Tensor& out, const torch::Tensor& z, const torch::Tensor& g) {
  switch (p) {
    case Prediction::V: return eps_from_v(z, out, g);
    case Prediction::Eps: return out;
    case Prediction::X0: return eps_from_x0(z, out, g);
  }
  return out;
}

torch::Tensor to_v(Prediction p, const torch::Tensor& out, const torch::Tensor& z, const torch::Tensor& g) {
  if (p == Prediction::V) return out;
  return v_from_x0_eps(to_x0(p, out, z, g), to_eps(p, out, z, g), g);
}

torch::Tensor target(Prediction p, const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& g) {
  switch (p) {
    case Prediction::V: return v_from_x0_eps(x0, eps, g);
    case Prediction::Eps: return eps;
    case Prediction::X0: return x0;
  }
  return x0;
}

}  // namespace mdm
