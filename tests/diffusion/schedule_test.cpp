// Noise schedules against formulas.md's check values and closed forms; sampling time steps.
#include <mdm/diffusion/schedule.h>

#include <cmath>

#include "test_util.h"

namespace mdm {
namespace {

constexpr double kPi = 3.14159265358979323846;

double alpha_bar(double tau) {
  const double c = std::cos((tau + 0.008) / 1.008 * kPi / 2);
  return c * c;
}

TEST(Schedule, CosineMatchesTheCheckValues) {
  NoiseSchedule s("cosine", 1000);
  EXPECT_DOUBLE_EQ(s.gamma(0), 1.0);
  EXPECT_NEAR(s.gamma(1), 0.99995872, 5e-9);
  EXPECT_NEAR(s.gamma(500), 0.4938, 5e-5);
  EXPECT_NEAR(s.gamma(999), 2.43e-6, 0.005e-6);
  EXPECT_NEAR(s.gamma(1000), 2.43e-9, 0.005e-9);
  EXPECT_NEAR(s.logsnr(1000), -19.84, 0.005);
  EXPECT_NEAR(s.logsnr(1), 10.095, 0.0005);
}

TEST(Schedule, CosineIsTheTelescopedProductWhereNoBetaIsCapped) {
  // Π(1 − β_i) = ᾱ(k/N)/ᾱ(0) as long as no β_i reaches the 0.999 cap (which only happens at the end).
  NoiseSchedule s("cosine", 1000);
  for (int64_t k : {1, 10, 250, 500, 750, 900, 990}) {
    const double expected = alpha_bar(k / 1000.0) / alpha_bar(0.0);
    EXPECT_NEAR(s.gamma(k) / expected, 1.0, 1e-6) << k;
  }
}

TEST(Schedule, LinearIsTheDdpmSchedule) {
  NoiseSchedule s("linear", 1000);
  EXPECT_NEAR(s.gamma(1), 1.0 - 1e-4, 1e-12);
  EXPECT_NEAR(s.gamma(2), (1.0 - 1e-4) * (1.0 - (1e-4 + (0.02 - 1e-4) / 999)), 1e-12);
  EXPECT_NEAR(s.gamma(1000), 4.04e-5, 0.005e-5);  // reference-facts.md §5
}

TEST(Schedule, ShiftedSchedulesDivideTheSnrExactly) {
  NoiseSchedule base("cosine", 1000);
  for (double p : {1.0, 2.0}) {
    NoiseSchedule shifted("cosine-shift4", 1000, p);
    EXPECT_DOUBLE_EQ(shifted.shift(), std::pow(4.0, p));
    EXPECT_DOUBLE_EQ(shifted.gamma(0), 1.0);
    for (int64_t k = 1; k <= 1000; k += 37) {
      const double snr = base.gamma(k) / (1 - base.gamma(k));
      const double snr_shifted = shifted.gamma(k) / (1 - shifted.gamma(k));
      EXPECT_NEAR(snr_shifted * std::pow(4.0, p) / snr, 1.0, 1e-9) << k;
    }
  }
}

TEST(Schedule, ContinuousTimeAgreesWithTheTable) {
  NoiseSchedule s("cosine-shift4", 1000);
  for (int64_t k : {0, 1, 17, 500, 999, 1000}) EXPECT_NEAR(s.gamma_at(k / 1000.0) / s.gamma(k), 1.0, 1e-12) << k;
  EXPECT_GT(s.gamma_at(0.5005), s.gamma(501));
  EXPECT_LT(s.gamma_at(0.5005), s.gamma(500));
  // The closed-form continuous schedule follows the same curve as the table where no β is capped.
  NoiseSchedule c("cosine", 0);
  EXPECT_TRUE(c.continuous());
  EXPECT_NEAR(c.gamma_at(0.5), NoiseSchedule("cosine").gamma(500), 1e-12);
  EXPECT_THROW(c.gamma(3), Error);
}

TEST(Schedule, UnknownNameIsAConfigError) { EXPECT_THROW(NoiseSchedule("sigmoid"), ConfigError); }

TEST(Schedule, SamplingTimestepsAsTheReference) {
  // reference-facts.md §7: K = 250 → 997, 993, …, 4, 0; K = 100 → 991, …, 10, 0; K = 50 → 981, 962, …, 20, 0.
  auto t250 = sampling_timesteps(1000, 250);
  ASSERT_EQ(t250.size(), 251u);
  EXPECT_EQ(t250[0], 997);
  EXPECT_EQ(t250[1], 993);
  EXPECT_EQ(t250[249], 4);
  EXPECT_EQ(t250[250], 0);
  auto t100 = sampling_timesteps(1000, 100);
  EXPECT_EQ(t100.front(), 991);
  EXPECT_EQ(t100[99], 10);
  auto t50 = sampling_timesteps(1000, 50);
  EXPECT_EQ(t50[0], 981);
  EXPECT_EQ(t50[1], 962);
  EXPECT_EQ(t50[49], 20);
  auto all = sampling_timesteps(1000, 1000);
  for (int64_t i = 0; i <= 1000; ++i) EXPECT_EQ(all[i], 1000 - i);
  // Trailing spacing starts at N: 1000, 950, …, 50, 0 for 20 steps.
  auto trailing = sampling_timesteps(1000, 20, "trailing");
  ASSERT_EQ(trailing.size(), 21u);
  for (int64_t i = 0; i <= 20; ++i) EXPECT_EQ(trailing[i], 1000 - 50 * i);
  EXPECT_THROW(sampling_timesteps(1000, 20, "leading"), ConfigError);
  EXPECT_THROW(sampling_timesteps(1000, 0), Error);
  EXPECT_THROW(sampling_timesteps(1000, 1001), Error);
}

}  // namespace
}  // namespace mdm
