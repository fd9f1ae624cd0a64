// The prompt colour check's parts on hand-worked images (the whole check runs in TextTraining.*).
#include "../test_util.h"

#include <mdm/eval/prompt_colour.h>
#include <mdm/io/png.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mdm::test {
namespace {

namespace fs = std::filesystem;

// uint8 [3, 4, 4] of one colour, as PNG bytes.
std::string png_of(int r, int g, int b) {
  auto img = torch::stack({torch::full({4, 4}, r), torch::full({4, 4}, g), torch::full({4, 4}, b)}).to(torch::kUInt8);
  const auto path = (fs::temp_directory_path() / fmt::format("mdm_eval_{}_{}_{}_{}.png", ::getpid(), r, g, b)).string();
  io::save_png(img, path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  fs::remove(path);
  return ss.str();
}

class Captioned : public data::DataSource {
 public:
  Captioned() {
    records_ = {{png_of(255, 0, 0), "red heart, love", -1},
                {png_of(255, 255, 255), "  Red Heart outline", -1},
                {"not a png", "red heart, corrupt", -1},
                {png_of(0, 255, 0), "frog, animal", -1},
                {png_of(0, 0, 255), "blue car", -1}};
  }
  int64_t size() const override { return static_cast<int64_t>(records_.size()); }
  data::Record read(int64_t i) const override { return records_.at(static_cast<size_t>(i)); }
  std::string location(int64_t i) const override { return "memory:" + std::to_string(i); }
  std::string path() const override { return "memory.tsv"; }

 private:
  std::vector<data::Record> records_;
};

TEST(PromptColour, MeanColourMapsModelSpaceToUnitRgb) {
  // Two images: one all −1 (black), one with R = 1, G = 0, B = −1 → mean (0.5, 0.25, 0).
  auto black = torch::full({1, 3, 2, 2}, -1.0);
  auto other = torch::stack({torch::full({2, 2}, 1.0), torch::zeros({2, 2}), torch::full({2, 2}, -1.0)}).unsqueeze(0);
  const auto m = eval::mean_colour(torch::cat({black, other}));
  EXPECT_TRUE(torch::allclose(m, torch::tensor({0.5f, 0.25f, 0.0f}))) << m;
  EXPECT_NEAR(eval::colour_distance(torch::tensor({1.0f, 1.0f, 1.0f}), torch::zeros({3})), std::sqrt(3.0), 1e-6);
  EXPECT_THROW(eval::mean_colour(torch::zeros({2, 1, 4, 4})), Error);
}

TEST(PromptColour, FillColourIgnoresWhiteBlackAndGreyPixels) {
  // One 2×2 image in [0, 1]: white, black, grey 0.5, and red (1, 0.1, 0.1); then a second image: green
  // (0.2, 0.8, 0.2) and three whites. Coloured (saturation ≥ 0.2): red and green → mean (0.6, 0.45, 0.15).
  auto unit = torch::tensor({1.0f, 0.0f, 0.5f, 1.0f, 1.0f, 0.0f, 0.5f, 0.1f, 1.0f, 0.0f, 0.5f, 0.1f}).reshape({3, 2, 2});
  auto second = torch::ones({3, 2, 2});
  second.index_put_({torch::indexing::Slice(), 0, 0}, torch::tensor({0.2f, 0.8f, 0.2f}));
  const auto images = torch::stack({unit, second}).mul(2).sub(1);  // model space
  const auto fill = eval::fill_colour(images);
  EXPECT_TRUE(torch::allclose(fill, torch::tensor({0.6f, 0.45f, 0.15f}), 1e-5, 1e-6)) << fill;
  // A saturation threshold above both: no coloured pixel, the whole mean.
  EXPECT_TRUE(torch::allclose(eval::fill_colour(images, 0.95), eval::mean_colour(images)));
}

TEST(PromptColour, ImagesAreChosenByCaptionPrefixIgnoringCaseAndCorruptRecords) {
  Captioned data;
  const auto hearts = eval::images_with_caption(data, "red heart", 4);
  ASSERT_EQ(hearts.sizes(), (std::vector<int64_t>{2, 3, 4, 4}));  // the corrupt one is skipped
  // Red (1, −1, −1) and white (1, 1, 1): mean colour (1, 0.5, 0.5).
  EXPECT_TRUE(torch::allclose(eval::mean_colour(hearts), torch::tensor({1.0f, 0.5f, 0.5f}))) << eval::mean_colour(hearts);
  EXPECT_EQ(eval::images_with_caption(data, "FROG", 4).size(0), 1);
  try {
    eval::images_with_caption(data, "yellow star", 4);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("memory.tsv"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("yellow star"), std::string::npos) << e.what();
  }
}

TEST(PromptColourReport, PromptsMatterOnlyWhenEachPromptIsNearestItsOwnImages) {
  eval::PromptColourReport r;
  r.targets = {{"red heart", "red heart"}, {"green frog", "frog"}};
  r.reference_images = {2, 1};
  r.reference = {torch::tensor({1.0f, 0.2f, 0.2f}), torch::tensor({0.2f, 0.8f, 0.2f})};
  r.sampled = {torch::tensor({0.9f, 0.3f, 0.3f}), torch::tensor({0.3f, 0.7f, 0.3f})};
  r.distance = {{0.17, 0.85}, {0.85, 0.17}};
  EXPECT_TRUE(r.prompts_matter());
  EXPECT_NE(r.table().find("prompts matter"), std::string::npos) << r.table();
  EXPECT_NE(r.table().find("\"frog…\" images: nearest are the samples of \"green frog\" (its own prompt)"), std::string::npos)
      << r.table();
  r.distance = {{0.17, 0.85}, {0.10, 0.17}};  // the heart images are nearer the frog samples than the heart samples
  EXPECT_FALSE(r.prompts_matter());
  EXPECT_NE(r.table().find("do NOT"), std::string::npos);
}

}  // namespace
}  // namespace mdm::test
