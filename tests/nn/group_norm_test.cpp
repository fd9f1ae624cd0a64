// GroupNorm under mixed precision (nn/group_norm.h): outside CUDA autocast it is the module itself; the
// reduced-precision path stays within bf16 rounding of float32 and gives the float32 parameters their
// gradients. The CUDA autocast side (memory, closeness inside a whole model) is in models/cuda_test.cpp.
#include <mdm/nn/group_norm.h>

#include "test_util.h"

namespace mdm {
namespace {

TEST(GroupNorm, OutsideCudaAutocastItIsTheModule) {
  auto norm = test::random_group_norm(8, 32, 1);
  auto x = torch::randn({2, 32, 6, 6}) * 3 + 1;
  EXPECT_TRUE(nn::low_precision_group_norm());  // the default
  EXPECT_TRUE(torch::equal(nn::group_norm(norm, x), norm(x)));
}

TEST(GroupNorm, Bf16PathIsWithinBf16RoundingAndGivesFloat32Gradients) {
  auto ref = test::random_group_norm(8, 32, 2);
  auto low = test::random_group_norm(8, 32, 2);
  torch::manual_seed(3);
  auto x = (torch::randn({2, 32, 6, 6}) * 3 + 1).requires_grad_(true);
  auto x_low = x.detach().clone().requires_grad_(true);
  auto g = torch::randn({2, 32, 6, 6});

  auto y = ref(x);
  auto y_low = nn::group_norm_in(low, x_low, torch::kBFloat16);
  ASSERT_EQ(y_low.scalar_type(), torch::kBFloat16);
  const double scale = y.abs().max().item<double>();
  const double err = (y_low.to(torch::kFloat) - y).abs().max().item<double>();
  // The input is rounded to bf16 (relative 2^-9) before the norm and the output after it: a few bf16 ulps.
  EXPECT_LT(err, scale / 64) << err << " of " << scale;
  EXPECT_GT(err, 0.0);  // it really ran in bf16

  (y * g).sum().backward();
  (y_low.to(torch::kFloat) * g).sum().backward();
  for (auto [a, b] : {std::pair{ref->weight, low->weight}, std::pair{ref->bias, low->bias}, std::pair{x, x_low}}) {
    ASSERT_TRUE(b.grad().defined());
    EXPECT_EQ(b.grad().scalar_type(), torch::kFloat);
    const double gs = a.grad().abs().max().item<double>();
    EXPECT_LT((a.grad() - b.grad()).abs().max().item<double>(), gs / 32) << gs;
  }
}

TEST(GroupNorm, SwitchIsProcessWide) {
  nn::set_low_precision_group_norm(false);
  EXPECT_FALSE(nn::low_precision_group_norm());
  nn::set_low_precision_group_norm(true);
  EXPECT_TRUE(nn::low_precision_group_norm());
}

}  // namespace
}  // namespace mdm
