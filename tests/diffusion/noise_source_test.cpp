#include "../test_util.h"

#include <mdm/diffusion/noise_source.h>

#include <ATen/CPUGeneratorImpl.h>

#if MDM_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/Sleep.h>
#endif

namespace mdm {
namespace {

const std::vector<uint64_t> kSeeds = {3, 11, 42, 7, 9};

// What each row must be: torch::randn of the row's shape from a generator of that row's seed alone,
// `draws` times in a row (the last one returned).
torch::Tensor expected_rows(const std::vector<int64_t>& row_shape, int draws) {
  std::vector<torch::Tensor> rows;
  for (uint64_t seed : kSeeds) {
    auto gen = at::detail::createCPUGenerator(seed);
    torch::Tensor row;
    for (int i = 0; i < draws; ++i) row = torch::randn(row_shape, gen, torch::kFloat);
    rows.push_back(row);
  }
  return torch::stack(rows);
}

// Restores LibTorch's intra-op thread count when a test changes it.
struct ThreadCount {
  const int saved = torch::get_num_threads();
  ~ThreadCount() { torch::set_num_threads(saved); }
};

TEST(NoiseSource, EachRowIsItsOwnSeedsRandn) {
  NoiseSource noise(kSeeds);
  // Rows of 3·17·19 numbers (the vectorised fill) and of 6 (the scalar one), one generator stream per row.
  EXPECT_TRUE(torch::equal(noise.normal(torch::empty({5, 3, 17, 19})), expected_rows({3, 17, 19}, 1)));
  EXPECT_TRUE(torch::equal(noise.normal(torch::empty({5, 2, 3})), []() {
    std::vector<torch::Tensor> rows;
    for (uint64_t seed : kSeeds) {
      auto gen = at::detail::createCPUGenerator(seed);
      torch::randn({3, 17, 19}, gen, torch::kFloat);
      rows.push_back(torch::randn({2, 3}, gen, torch::kFloat));
    }
    return torch::stack(rows);
  }()));
}

TEST(NoiseSource, TheNumbersDoNotDependOnTheThreadCount) {
  ThreadCount restore;
  auto draw = [](int threads) {
    torch::set_num_threads(threads);
    NoiseSource noise(kSeeds);
    noise.normal(torch::empty({5, 3, 8, 8}));
    return noise.normal(torch::empty({5, 3, 128, 128}));  // enough numbers to draw on several threads
  };
  const auto one = draw(1), two = draw(2), five = draw(5);
  EXPECT_TRUE(torch::equal(one, two));
  EXPECT_TRUE(torch::equal(one, five));
  EXPECT_FALSE(torch::equal(one[0], one[1]));  // and the rows differ
}

TEST(NoiseSource, DrawsInInferenceModeInTheRequestedDtype) {
  ThreadCount restore;
  // Enough numbers for the draw to run on several threads, which start outside inference mode.
  torch::set_num_threads(2);
  c10::InferenceMode inference;
  NoiseSource noise(kSeeds);
  const auto x = noise.normal(torch::empty({5, 3, 128, 128}, torch::kBFloat16));
  EXPECT_EQ(x.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(x, expected_rows({3, 128, 128}, 1).to(torch::kBFloat16)));
}

TEST(NoiseSource, AWrongBatchNamesBothCounts) {
  NoiseSource noise(kSeeds);
  try {
    noise.normal(torch::empty({4, 3, 8, 8}));
    FAIL() << "a batch of 4 with 5 seeds was accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "noise: batch of 4 but 5 seeds");
  }
}

// On a GPU, drawing must not wait for the stream's earlier work (the network's forward in a sampling step):
// the host draws the next noise while the GPU computes. Two draws in a row while the GPU is busy also show
// that the second draw's pinned buffer does not overwrite the first before its copy has run.
TEST(NoiseSource, CudaDrawDoesNotWaitForTheGpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
#if MDM_WITH_CUDA
  const std::vector<int64_t> shape = {5, 3, 256, 256};
  const auto like = torch::empty(shape, torch::device(torch::kCUDA).dtype(torch::kBFloat16));
  NoiseSource noise(kSeeds);
  torch::cuda::synchronize();
  at::cuda::sleep(1'000'000'000);  // about half a second of GPU clock cycles
  const auto first = noise.normal(like);
  const auto second = noise.normal(like);
  const bool gpu_still_busy = !at::cuda::getCurrentCUDAStream().query();
  torch::cuda::synchronize();
  EXPECT_TRUE(gpu_still_busy) << "NoiseSource::normal waited for the GPU's earlier work";
  EXPECT_EQ(first.device(), like.device());
  EXPECT_TRUE(torch::equal(first.cpu(), expected_rows({3, 256, 256}, 1).to(torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(second.cpu(), expected_rows({3, 256, 256}, 2).to(torch::kBFloat16)));
#endif
}

}  // namespace
}  // namespace mdm
