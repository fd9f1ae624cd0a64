// The fused path's check (nn/fusion_check.h) on the CPU: it runs the fused functions against the unfused
// ops in float64, finds them within the dtype's error, records the result once, and leaves the caller's
// random streams and autograd state alone. On CUDA (models/cuda_test.cpp) it is what lets Auto fuse.
#include <mdm/nn/fusion_check.h>

#include "test_util.h"

namespace mdm {
namespace {

TEST(FusionCheck, PassesOnTheCpuWithFloat32AndBf16SizedErrors) {
  const auto f32 = nn::check_fusion(torch::kCPU, torch::kFloat);
  ASSERT_TRUE(f32.ran);
  EXPECT_TRUE(f32.passed) << f32.detail;
  EXPECT_EQ(f32.tolerance, 1e-4);
  EXPECT_LT(f32.max_error, 1e-5) << "float32 arithmetic throughout: round-off";
  EXPECT_GT(f32.max_error, 0.0);

  const auto bf16 = nn::check_fusion(torch::kCPU, torch::kBFloat16);
  ASSERT_TRUE(bf16.ran);
  EXPECT_TRUE(bf16.passed) << bf16.detail;
  EXPECT_EQ(bf16.tolerance, 3e-2);
  // Outputs and gradients rounded to bf16 (8 bits): errors of that order, well inside the tolerance.
  EXPECT_GT(bf16.max_error, 3e-4);
  EXPECT_LT(bf16.max_error, 1e-2);
  EXPECT_NE(nn::to_string(bf16).find("passed (max relative error"), std::string::npos) << nn::to_string(bf16);
  std::cout << "fusion check on the CPU: float32 " << nn::to_string(f32) << "; bf16 " << nn::to_string(bf16) << "\n";
}

TEST(FusionCheck, RunsOncePerDeviceAndDtypeAndIsRecorded) {
  EXPECT_FALSE(nn::fusion_check_result(torch::kCPU, torch::kHalf).ran);
  EXPECT_EQ(nn::to_string(nn::fusion_check_result(torch::kCPU, torch::kHalf)), "not run");
  const auto first = nn::check_fusion(torch::kCPU, torch::kFloat);
  const auto again = nn::check_fusion(torch::kCPU, torch::kFloat);
  const auto recorded = nn::fusion_check_result(torch::kCPU, torch::kFloat);
  EXPECT_EQ(first.max_error, again.max_error);
  EXPECT_EQ(first.max_error, recorded.max_error);
  EXPECT_EQ(first.detail, recorded.detail);
  EXPECT_TRUE(nn::fusion_verified(torch::kCPU, torch::kFloat));
}

// It may first run in the middle of a caller's forward: in inference mode, without autograd, under a seed
// the caller relies on.
TEST(FusionCheck, LeavesTheCallersRandomStreamAndModesAlone) {
  torch::manual_seed(5);
  const auto expected = torch::randn({8});
  torch::manual_seed(5);
  nn::FusionCheck check;
  {
    c10::InferenceMode inference;
    check = nn::check_fusion(torch::kCPU, torch::kDouble);
    EXPECT_TRUE(c10::InferenceMode::is_enabled());
  }
  EXPECT_TRUE(check.passed) << check.detail;
  EXPECT_LT(check.max_error, 1e-12) << "float64 against float64";
  EXPECT_TRUE(torch::equal(torch::randn({8}), expected));
}

}  // namespace
}  // namespace mdm
