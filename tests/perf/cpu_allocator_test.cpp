// The caching CPU allocator: blocks of 32 MiB and more come back for equal requests, smaller ones stay with
// malloc, the limit holds, results are bitwise those of LibTorch's allocator, and it is safe from several threads.
#include <mdm/perf/cpu_allocator.h>

#include <cstdlib>
#include <thread>

#include "test_util.h"

namespace mdm::perf {
namespace {

template <typename F>
void expect_error_contains(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Installs the caching allocator for one test and restores LibTorch's afterwards.
class CpuAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("MDM_CPU_ALLOCATOR");
    unsetenv("MDM_CPU_CACHE_LIMIT_MB");
    ASSERT_TRUE(install_caching_cpu_allocator());
    release_cached_cpu_memory();
    set_cpu_cache_limit(int64_t{1} << 30);
  }
  void TearDown() override {
    uninstall_caching_cpu_allocator();
    release_cached_cpu_memory();
  }
};

TEST_F(CpuAllocatorTest, AFreedLargeBlockServesTheNextEqualRequest) {
  const auto before = cpu_cache_stats();
  void* first = nullptr;
  {
    auto t = torch::empty({8 << 20}, torch::kFloat);  // 32 MiB
    first = t.data_ptr();
    EXPECT_EQ(cpu_cache_stats().live_bytes - before.live_bytes, 32 << 20);
  }
  EXPECT_EQ(cpu_cache_stats().cached_bytes, 32 << 20);
  auto again = torch::empty({8 << 20}, torch::kFloat);
  EXPECT_EQ(again.data_ptr(), first);
  const auto after = cpu_cache_stats();
  EXPECT_EQ(after.hits - before.hits, 1);
  EXPECT_EQ(after.misses - before.misses, 1);
  EXPECT_EQ(after.cached_bytes, 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(again.data_ptr()) % 64, 0u);  // c10's alignment
}

TEST_F(CpuAllocatorTest, ABlockIsReusedOnlyForRequestsItFitsClosely) {
  void* big = nullptr;
  {
    auto t = torch::empty({16 << 20}, torch::kFloat);  // 64 MiB
    big = t.data_ptr();
  }
  auto smaller = torch::empty({8 << 20}, torch::kFloat);  // 32 MiB: would waste half of the cached block
  EXPECT_NE(smaller.data_ptr(), big);
  EXPECT_EQ(cpu_cache_stats().cached_bytes, 64 << 20);
  auto close = torch::empty({(16 << 20) - 1000}, torch::kFloat);  // within 1/8: takes it
  EXPECT_EQ(close.data_ptr(), big);
}

TEST_F(CpuAllocatorTest, SmallTensorsGoToMallocAndAreNotKept) {
  const auto before = cpu_cache_stats();
  for (int i = 0; i < 100; ++i) torch::ones({1 << 20});  // 4 MiB: malloc's heap
  const auto after = cpu_cache_stats();
  EXPECT_EQ(after.cached_bytes, before.cached_bytes);
  EXPECT_EQ(after.hits + after.misses, before.hits + before.misses);
}

TEST_F(CpuAllocatorTest, TheLimitReleasesWhatWouldExceedIt) {
  set_cpu_cache_limit(48 << 20);
  {
    auto a = torch::empty({8 << 20});  // 32 MiB each
    auto b = torch::empty({8 << 20});
  }
  auto s = cpu_cache_stats();
  EXPECT_EQ(s.cached_bytes, 32 << 20);  // the second one did not fit under 48 MiB
  EXPECT_GE(s.released, 1);
  set_cpu_cache_limit(0);
  EXPECT_EQ(cpu_cache_stats().cached_bytes, 0);
  release_cached_cpu_memory();
}

TEST_F(CpuAllocatorTest, ModelOutputsAreBitwiseThoseOfLibTorchsAllocator) {
  auto config = load_config(test::config_file("tiny_s16s32.yaml"));
  auto run = [&] {
    torch::manual_seed(3);
    auto model = build_model(config.model);
    test::randomize(*model, 3);  // a fresh model outputs zeros
    model->eval();
    torch::NoGradGuard no_grad;
    const int64_t b = 8;
    std::vector<torch::Tensor> z = {torch::randn({b, 3, 16, 16}), torch::randn({b, 3, 32, 32})};
    Conditioning cond;
    if (config.model.conditioning == ConditioningKind::Class) cond.labels = torch::arange(b, torch::kLong) % 2;
    if (config.model.conditioning == ConditioningKind::Text) {
      cond.text = torch::randn({b, 5, config.model.text_feature_dim});
      cond.text_mask = torch::ones({b, 5});
    }
    return model->forward(z, torch::linspace(10, 900, b), cond);
  };
  run();  // warm-up: the first call need not be bitwise equal to later ones (see the test below)
  const auto cached = run();
  const auto cached_again = run();  // now from reused memory, holding the first run's stale data
  uninstall_caching_cpu_allocator();
  const auto plain = run();
  ASSERT_EQ(cached.size(), plain.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_TRUE(torch::equal(cached[i], plain[i])) << "level " << i;
    EXPECT_TRUE(torch::equal(cached_again[i], plain[i])) << "level " << i;
  }
}

TEST_F(CpuAllocatorTest, ReusedBlocksGiveBitwiseTheResultsOfFreshMemory) {
  // Attention-sized intermediates (32 MiB and more) freed and reused between two equal computations.
  auto compute = [] {
    torch::manual_seed(5);
    auto a = torch::randn({4096, 256}), b = torch::randn({256, 2048});
    auto w = torch::softmax(torch::matmul(a, b) / 16, -1);  // [4096, 2048]: 32 MiB
    return torch::matmul(w, torch::randn({2048, 64})) + w.sum(-1, true);
  };
  // The very first call is not bitwise equal to later ones even with LibTorch's own allocator (measured:
  // BLAS's first call on these shapes), so every compared call comes after a warm-up.
  compute();
  const int64_t hits_before = cpu_cache_stats().hits;
  const auto first = compute();
  const auto second = compute();
  EXPECT_GT(cpu_cache_stats().hits, hits_before);
  uninstall_caching_cpu_allocator();
  const auto plain = compute();
  EXPECT_TRUE(torch::equal(first, plain));
  EXPECT_TRUE(torch::equal(second, plain));
}

TEST_F(CpuAllocatorTest, ThreadsAllocatingAndFreeingTogetherLeaveNothingLive) {
  const int64_t live_before = cpu_cache_stats().live_bytes;
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([k] {
      for (int i = 0; i < 20; ++i) {
        auto t = torch::full({(8 << 20) + 1024 * ((i + k) % 5)}, static_cast<float>(i));  // 32 MiB and a bit
        ASSERT_EQ(t[7].item<float>(), static_cast<float>(i));
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto s = cpu_cache_stats();
  EXPECT_EQ(s.live_bytes, live_before);
  EXPECT_GT(s.hits, 0);
}

TEST(CpuAllocatorEnv, MallocKeepsLibTorchsAllocatorAndBadValuesAreNamed) {
  setenv("MDM_CPU_ALLOCATOR", "malloc", 1);
  EXPECT_FALSE(install_caching_cpu_allocator());
  EXPECT_FALSE(caching_cpu_allocator_installed());
  setenv("MDM_CPU_ALLOCATOR", "jemalloc", 1);
  expect_error_contains([] { install_caching_cpu_allocator(); }, "MDM_CPU_ALLOCATOR=jemalloc");
  unsetenv("MDM_CPU_ALLOCATOR");
  setenv("MDM_CPU_CACHE_LIMIT_MB", "lots", 1);
  expect_error_contains([] { install_caching_cpu_allocator(); }, "MDM_CPU_CACHE_LIMIT_MB=lots");
  setenv("MDM_CPU_CACHE_LIMIT_MB", "512", 1);
  EXPECT_TRUE(install_caching_cpu_allocator());
  EXPECT_EQ(cpu_cache_limit(), int64_t{512} << 20);
  unsetenv("MDM_CPU_CACHE_LIMIT_MB");
  uninstall_caching_cpu_allocator();
}

}  // namespace
}  // namespace mdm::perf
