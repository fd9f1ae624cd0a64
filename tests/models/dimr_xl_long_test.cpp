// DiMR-XL/2R at full size (label "long": ~2 GB and 10-45 s on 2 CPU cores): the published parameter count.
#include <mdm/models/dimr.h>

#include "test_util.h"

namespace mdm {
namespace {

TEST(DiMR, XL2RHasThePublishedParameterCount) {
  const auto config = load_config(test::config_file("paper/dimr_xl_2r.yaml"));
  torch::NoGradGuard no_grad;
  auto model = build_model(config.model);
  const int64_t n = count_parameters(*model);
  RecordProperty("parameters", std::to_string(n));
  EXPECT_NEAR(static_cast<double>(n), 505.05e6, 505.05e3) << n;  // within 0.1% of the paper's 505.05M
  // By hand: Transformer branch 396,252,484 (39 blocks of 9,229,440, 19 skip layers of 1,844,160, patch conv 16,320,
  // positions 245,760, classes 960,960, output 42,244); ConvNeXt branch 108,793,924 (hand-off 74,040,960).
  EXPECT_EQ(n, 505046408);
  const auto s = summarize(config.model, *model);
  EXPECT_EQ(s.total_parameters, n);
  ASSERT_EQ(s.levels.size(), 2u);
  EXPECT_EQ(s.levels[0].resolution, 32);
  EXPECT_EQ(s.levels[0].adapter_parameters, 74040960);  // TD-LN(38400), Linear(38400 → 4·480), TD-LN(480)
  EXPECT_GT(s.total_flops, 0.0);
}

}  // namespace
}  // namespace mdm
