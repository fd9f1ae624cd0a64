// Output patterns: %d forms, {index} / {seed} / {prompt}, prompt slugs, and which patterns name one file.
#include <mdm/util/output_pattern.h>

#include "test_util.h"

namespace mdm {
namespace {

using util::expand_output_pattern;

TEST(OutputPattern, ExpandsPrintfIndexForms) {
  EXPECT_EQ(expand_output_pattern("out_%d.png", 7, 0, ""), "out_7.png");
  EXPECT_EQ(expand_output_pattern("out_%03d.png", 7, 0, ""), "out_007.png");
  EXPECT_EQ(expand_output_pattern("out_%03d.png", 1234, 0, ""), "out_1234.png");
  EXPECT_EQ(expand_output_pattern("[%5d]", 42, 0, ""), "[   42]");
  EXPECT_EQ(expand_output_pattern("[%-4d]", 42, 0, ""), "[42  ]");
  EXPECT_EQ(expand_output_pattern("%03d", -5, 0, ""), "-05");
  EXPECT_EQ(expand_output_pattern("%d_%d", 3, 0, ""), "3_3");
  EXPECT_EQ(expand_output_pattern("%d", 9000000000LL, 0, ""), "9000000000");
  // %% is a literal %; other % sequences and over-wide forms stay as they are.
  EXPECT_EQ(expand_output_pattern("100%%_%d", 2, 0, ""), "100%_2");
  EXPECT_EQ(expand_output_pattern("%s_%x_%_%", 2, 0, ""), "%s_%x_%_%");
  EXPECT_EQ(expand_output_pattern("%0100d", 2, 0, ""), "%0100d");
}

TEST(OutputPattern, ExpandsNamedPlaceholders) {
  EXPECT_EQ(expand_output_pattern("{seed}_{index}.png", 7, 42, "x"), "42_7.png");
  EXPECT_EQ(expand_output_pattern("runs/{prompt}-{seed}.png", 0, -1, "A red rose, in the RAIN!!"),
            "runs/a_red_rose_in_the_rain--1.png");
  EXPECT_EQ(expand_output_pattern("{prompt}.png", 0, 0, ""), "image.png");
  EXPECT_EQ(expand_output_pattern("{prompt}", 0, 0, "  *** ...  "), "image");
  EXPECT_EQ(expand_output_pattern("{prompt}", 0, 0, "rote Rose — 赤い薔薇"), "rote_rose");
  EXPECT_EQ(expand_output_pattern("{foo}_{seed", 1, 2, ""), "{foo}_{seed");
  EXPECT_EQ(expand_output_pattern("{index}{index}", 4, 0, ""), "44");
}

TEST(OutputPattern, SlugsAreShortAndTrimmed) {
  EXPECT_EQ(util::prompt_slug("__Hello,   World__"), "hello_world");
  EXPECT_EQ(util::prompt_slug("ÄÖÜ"), "image");
  std::string long_prompt;
  for (int i = 0; i < 30; ++i) long_prompt += "word ";  // "word_word_..." would be 149 characters
  const std::string slug = util::prompt_slug(long_prompt);
  EXPECT_LE(slug.size(), 60u);
  EXPECT_EQ(slug, "word_word_word_word_word_word_word_word_word_word_word_word");  // 59: a '_' trimmed at 60
  EXPECT_EQ(util::prompt_slug(std::string(100, 'a')), std::string(60, 'a'));
}

TEST(OutputPattern, TellsWhetherImagesGetDifferentNames) {
  EXPECT_FALSE(util::pattern_distinguishes_images("out.png"));
  EXPECT_FALSE(util::pattern_distinguishes_images("{prompt}.png"));
  EXPECT_FALSE(util::pattern_distinguishes_images("100%%d.png"));
  EXPECT_FALSE(util::pattern_distinguishes_images("%s.png"));
  EXPECT_TRUE(util::pattern_distinguishes_images("out_%d.png"));
  EXPECT_TRUE(util::pattern_distinguishes_images("out_%04d.png"));
  EXPECT_TRUE(util::pattern_distinguishes_images("{index}.png"));
  EXPECT_TRUE(util::pattern_distinguishes_images("{prompt}_{seed}.png"));
}

}  // namespace
}  // namespace mdm
