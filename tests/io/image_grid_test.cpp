// Image grids: shapes, where every pixel lands, nearest upsampling of smaller levels, centring.
#include <mdm/io/image_grid.h>

#include "test_util.h"

namespace mdm {
namespace {

// [1, 2, 2] image k: values 10k + {1, 2; 3, 4}.
torch::Tensor small(int k) { return (torch::arange(1, 5, torch::kFloat) + 10 * k).view({1, 2, 2}); }

TEST(ImageGrid, PlacesThreeImagesInTwoColumns) {
  const auto grid = io::make_grid({small(0), small(1), small(2)}, 2, 1, -1.0);
  // 2 rows × 2 columns of 2×2 cells, 1 pixel of -1 between and around them.
  const auto expected = torch::tensor({{-1, -1, -1, -1, -1, -1, -1},  //
                                       {-1, 1, 2, -1, 11, 12, -1},    //
                                       {-1, 3, 4, -1, 13, 14, -1},    //
                                       {-1, -1, -1, -1, -1, -1, -1},  //
                                       {-1, 21, 22, -1, -1, -1, -1},  //
                                       {-1, 23, 24, -1, -1, -1, -1},  //
                                       {-1, -1, -1, -1, -1, -1, -1}},
                                      torch::kFloat)
                            .view({1, 7, 7});
  ASSERT_EQ(grid.sizes(), expected.sizes());
  EXPECT_TRUE(torch::equal(grid, expected)) << grid;
}

TEST(ImageGrid, ShapesColumnsAndDtype) {
  std::vector<torch::Tensor> five(5, torch::zeros({3, 4, 6}));
  // Default columns ceil(sqrt(5)) = 3: 2 rows; padding 2.
  EXPECT_EQ(io::make_grid(five).sizes(), (std::vector<int64_t>{3, 2 * 6 + 2, 3 * 8 + 2}));
  EXPECT_EQ(io::make_grid(five, 1, 0).sizes(), (std::vector<int64_t>{3, 20, 6}));
  EXPECT_EQ(io::make_grid(five, 9, 0).sizes(), (std::vector<int64_t>{3, 4, 30}));  // at most n columns
  const auto bytes = io::make_grid({torch::full({1, 2, 2}, 7, torch::kByte)}, 0, 1, 255);
  EXPECT_EQ(bytes.scalar_type(), torch::kByte);
  EXPECT_EQ(bytes.sum().item<int64_t>(), 12 * 255 + 4 * 7);
}

TEST(ImageGrid, UpsamplesIntegerMultiplesAndCentresOthers) {
  const auto big = torch::full({1, 4, 4}, 50.0f);
  const auto grid = io::make_grid({small(0), big}, 2, 0, 0.0);  // [1, 4, 8]
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{1, 4, 8}));
  const auto left = grid.narrow(2, 0, 4)[0];
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) EXPECT_EQ(left[y][x].item<float>(), 1 + (y / 2) * 2 + x / 2) << y << "," << x;
  }
  EXPECT_TRUE(torch::equal(grid.narrow(2, 4, 4), big));

  // 2×2 in a 5×5 cell: no integer factor, so centred at offset (5 - 2) / 2 = 1 on pad_value.
  const auto centred = io::make_grid({small(0), torch::zeros({1, 5, 5})}, 1, 0, -1.0);  // [1, 10, 5]
  const auto cell = centred.narrow(1, 0, 5)[0];
  EXPECT_TRUE(torch::equal(cell.narrow(0, 1, 2).narrow(1, 1, 2), small(0)[0]));
  EXPECT_EQ(cell.sum().item<float>(), 1 + 2 + 3 + 4 - 21);
}

TEST(ImageGrid, SideBySideShowsEveryLevelAtTheLargestSize) {
  const auto low = torch::arange(3 * 16, torch::kFloat).view({3, 4, 4});
  const auto high = -torch::arange(3 * 64, torch::kFloat).view({3, 8, 8}) - 1;
  const auto row = io::side_by_side({low, high});
  ASSERT_EQ(row.sizes(), (std::vector<int64_t>{3, 8 + 4, 2 * (8 + 2) + 2}));
  // The 4×4 level, nearest ×2: pixel (y, x) of the cell is low[y / 2][x / 2].
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        ASSERT_EQ(row[c][2 + y][2 + x].item<float>(), low[c][y / 2][x / 2].item<float>()) << c << y << x;
      }
    }
  }
  EXPECT_TRUE(torch::equal(row.narrow(1, 2, 8).narrow(2, 12, 8), high));
  // Everything else is padding (1.0).
  const auto padding_sum = row.sum() - row.narrow(1, 2, 8).narrow(2, 2, 8).sum() - high.sum();
  EXPECT_EQ(padding_sum.item<float>(), static_cast<float>(3 * (12 * 22 - 2 * 64)));
}

TEST(ImageGrid, BadInputsAreErrors) {
  EXPECT_THROW(io::make_grid({}), Error);
  EXPECT_THROW(io::make_grid({torch::zeros({3, 4, 4}), torch::zeros({1, 4, 4})}), Error);
  EXPECT_THROW(io::make_grid({torch::zeros({4, 4})}), Error);
  EXPECT_THROW(io::make_grid({torch::zeros({3, 4, 4})}, -1), Error);
  EXPECT_THROW(io::side_by_side({}), Error);
}

}  // namespace
}  // namespace mdm
