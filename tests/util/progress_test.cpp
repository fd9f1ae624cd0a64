// Progress bar: the exact line for fixed numbers, durations, and what a terminal and a log file get.
#include <mdm/util/progress.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "test_util.h"

namespace mdm {
namespace {

TEST(ProgressBar, FormatsDurations) {
  EXPECT_EQ(util::format_duration(0), "00:00");
  EXPECT_EQ(util::format_duration(50), "00:50");
  EXPECT_EQ(util::format_duration(59.6), "01:00");
  EXPECT_EQ(util::format_duration(3599.4), "59:59");
  EXPECT_EQ(util::format_duration(3599.5), "1:00:00");
  EXPECT_EQ(util::format_duration(3723), "1:02:03");
  EXPECT_EQ(util::format_duration(100 * 3600 + 61), "100:01:01");
  EXPECT_EQ(util::format_duration(-1), "--:--");
  EXPECT_EQ(util::format_duration(NAN), "--:--");
  EXPECT_EQ(util::format_duration(INFINITY), "--:--");
}

TEST(ProgressBar, RendersTheLine) {
  std::ostringstream out;
  util::ProgressBar bar(200, "sample", true, &out);
  // 50 of 200 in 20 s: 2.5 it/s, 150 left → 60 s; 50·30/200 = 7.5 → 7 of 30 cells.
  EXPECT_EQ(bar.render(50, 20.0), "sample [#######.......................] 50/200 2.50 it/s ETA 01:00");
  EXPECT_EQ(bar.render(200, 80.0), "sample [##############################] 200/200 2.50 it/s in 01:20");
  EXPECT_EQ(bar.render(0, 0.0), "sample [..............................] 0/200 -- it/s ETA --:--");
  // Below one step a second the rate is seconds per step: 4 steps in 10 s, 196 left → 490 s.
  EXPECT_EQ(bar.render(4, 10.0), "sample [..............................] 4/200 2.50 s/it ETA 08:10");
  util::ProgressBar open_ended(0, "train", true, &out);
  EXPECT_EQ(open_ended.render(37, 10.0), "train 37 3.70 it/s");
  EXPECT_TRUE(out.str().empty());  // render prints nothing
}

TEST(ProgressBar, LogStreamGetsPlainLinesAtEachTenth) {
  std::ostringstream out;
  {
    util::ProgressBar bar(250, "sample", true, &out);
    EXPECT_FALSE(bar.interactive());
    for (int64_t i = 0; i <= 250; ++i) bar.update(i);
    bar.finish();
    bar.finish();  // once only
  }
  const std::string text = out.str();
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 10) << text;  // 10%, ..., 90%, then the final line
  EXPECT_EQ(text.rfind("sample [", 0), 0u);
  EXPECT_NE(text.find("25/250"), std::string::npos);
  const std::string last = text.substr(text.rfind('\n', text.size() - 2) + 1);
  EXPECT_EQ(last.rfind("sample [##############################] 250/250 ", 0), 0u) << last;
  EXPECT_NE(last.find(" in 00:00\n"), std::string::npos) << last;
}

TEST(ProgressBar, TerminalRedrawsInPlaceAtMostEveryTenthOfASecond) {
  std::ostringstream out;
  const auto start = std::chrono::steady_clock::now();
  util::ProgressBar bar(1000, "steps", true, &out);
  bar.set_interactive(true);
  for (int64_t i = 1; i <= 1000; ++i) bar.update(i);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string drawn = out.str();
  const auto redraws = std::count(drawn.begin(), drawn.end(), '\r');
  EXPECT_GE(redraws, 1);  // the first update draws at once
  EXPECT_LE(redraws, 1 + static_cast<int64_t>(std::ceil(seconds / 0.1)));
  EXPECT_EQ(drawn.find('\n'), std::string::npos);
  bar.finish();
  const std::string text = out.str();
  ASSERT_EQ(text.back(), '\n');
  const std::string last = text.substr(text.rfind('\r') + 1);
  EXPECT_EQ(last.rfind("steps [##############################] 1000/1000 ", 0), 0u) << last;
}

TEST(ProgressBar, DisabledPrintsNothingAndAnAbandonedLineIsEnded) {
  std::ostringstream quiet;
  {
    util::ProgressBar bar(10, "x", false, &quiet);
    bar.set_interactive(true);
    bar.update(5);
    bar.finish();
  }
  EXPECT_TRUE(quiet.str().empty());

  std::ostringstream out;
  {
    util::ProgressBar bar(10, "x", true, &out);
    bar.set_interactive(true);
    bar.update(5);
  }  // no finish(): the destructor ends the line
  EXPECT_EQ(out.str().front(), '\r');
  EXPECT_EQ(out.str().back(), '\n');
}

}  // namespace
}  // namespace mdm
