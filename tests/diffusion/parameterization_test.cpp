// Conversions between v, ε and x0 round-trip (fp64, 1e-10) and agree with the forward process.
#include <mdm/diffusion/parameterization.h>

#include "test_util.h"

namespace mdm {
namespace {

TEST(Parameterization, RoundTripsInDoublePrecision) {
  torch::manual_seed(0);
  auto opts = torch::kDouble;
  auto x0 = torch::randn({4, 3, 5, 5}, opts), eps = torch::randn({4, 3, 5, 5}, opts);
  auto g = torch::tensor({0.999, 0.7, 0.2, 1e-4}, opts).view({4, 1, 1, 1});
  auto z = g.sqrt() * x0 + (1 - g).sqrt() * eps;
  auto v = v_from_x0_eps(x0, eps, g);
  for (Prediction p : {Prediction::V, Prediction::Eps, Prediction::X0}) {
    SCOPED_TRACE(to_string(p));
    auto out = target(p, x0, eps, g);
    EXPECT_LT((to_x0(p, out, z, g) - x0).abs().max().item<double>(), 1e-10);
    EXPECT_LT((to_eps(p, out, z, g) - eps).abs().max().item<double>(), 1e-10);
    EXPECT_LT((to_v(p, out, z, g) - v).abs().max().item<double>(), 1e-10);
  }
  // The reference's formulas: x0 = √γ·z − √(1−γ)·v and ε = √(1−γ)·z + √γ·v.
  EXPECT_LT((x0_from_v(z, v, g) - x0).abs().max().item<double>(), 1e-10);
  EXPECT_LT((eps_from_v(z, v, g) - eps).abs().max().item<double>(), 1e-10);
  EXPECT_LT((x0_from_eps(z, eps, g) - x0).abs().max().item<double>(), 1e-10);
  EXPECT_LT((eps_from_x0(z, x0, g) - eps).abs().max().item<double>(), 1e-10);
}

TEST(Parameterization, NamesParse) {
  EXPECT_EQ(parse_prediction("v"), Prediction::V);
  EXPECT_EQ(parse_prediction("eps"), Prediction::Eps);
  EXPECT_EQ(parse_prediction("x0"), Prediction::X0);
  EXPECT_THROW(parse_prediction("velocity"), ConfigError);
}

}  // namespace
}  // namespace mdm
