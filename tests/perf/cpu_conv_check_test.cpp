// The start-up check of LibTorch's CPU convolutions (perf/cpu_conv_check.h). On a LibTorch whose convolutions
// are right (Debian 12's 1.13) it leaves oneDNN on; on one whose oneDNN is wrong (Debian 13's 2.6 on AVX2 /
// AVX-512, scripts/check-libtorch2.sh without its ISA cap) it switches oneDNN off and the convolutions come
// out right. Either way, after the check a float32 convolution agrees with float64.
#include "test_util.h"

#include <mdm/perf/cpu_conv_check.h>

namespace mdm {
namespace {

TEST(CpuConvCheck, AfterTheCheckConvolutionsAgreeWithFloat64) {
  const bool mkldnn_was_on = at::globalContext().userEnabledMkldnn();
  const auto r = perf::ensure_correct_cpu_convolutions();
  EXPECT_LE(r.error_after, 1e-3);
  EXPECT_LE(perf::cpu_convolution_error(), 1e-3);
  if (r.onednn_disabled) {
    EXPECT_GT(r.error_before, 1e-3);
    EXPECT_FALSE(at::globalContext().userEnabledMkldnn());
  } else {
    EXPECT_EQ(r.error_after, r.error_before);
    EXPECT_EQ(at::globalContext().userEnabledMkldnn(), mkldnn_was_on);
  }
  at::globalContext().setUserEnabledMkldnn(mkldnn_was_on);
}

TEST(CpuConvCheck, TheProbeIsDeterministicAndLeavesTheGlobalSeedAlone) {
  const bool mkldnn_was_on = at::globalContext().userEnabledMkldnn();
  perf::ensure_correct_cpu_convolutions();
  torch::manual_seed(5);
  const auto expected = torch::randn({4});
  torch::manual_seed(5);
  const double a = perf::cpu_convolution_error();
  const double b = perf::cpu_convolution_error();
  EXPECT_EQ(a, b);
  EXPECT_TRUE(torch::equal(torch::randn({4}), expected));
  // Float32 against float64 over 9·C terms: round-off, far below the tolerance, but not zero.
  EXPECT_LT(a, 1e-4);
  EXPECT_GT(a, 0.0);
  at::globalContext().setUserEnabledMkldnn(mkldnn_was_on);
}

TEST(CpuConvCheck, AToleranceNoConvolutionMeetsIsAnErrorThatSaysWhy) {
  const bool mkldnn_was_on = at::globalContext().userEnabledMkldnn();
  try {
    perf::ensure_correct_cpu_convolutions(/*tolerance=*/0.0);
    FAIL() << "a zero tolerance cannot be met by float32 round-off";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU convolutions are wrong"), std::string::npos) << e.what();
  }
  at::globalContext().setUserEnabledMkldnn(mkldnn_was_on);
}

}  // namespace
}  // namespace mdm
