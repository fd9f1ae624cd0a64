// util/device_copy.h: host → device copies that leave the host free. On the CPU they are plain copies; on
// CUDA the source goes through pinned memory and an asynchronous copy, and a pinned temporary freed at once
// must not be reused before its copy has read it.
#include <mdm/util/device_copy.h>

#include "../test_util.h"

namespace mdm {
namespace {

TEST(DeviceCopy, OnTheCpuItIsThePlainCopy) {
  auto t = torch::arange(12, torch::kFloat).view({3, 4});
  const auto same = util::to_device_async(t, torch::kCPU);
  EXPECT_EQ(same.data_ptr(), t.data_ptr());  // nothing to copy
  EXPECT_FALSE(util::pin_for(t, torch::kCPU).is_pinned());
  EXPECT_FALSE(util::to_device_async(torch::Tensor(), torch::kCPU).defined());
}

TEST(DeviceCopy, CudaCopiesAreAsynchronousAndExact) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const torch::Device cuda(torch::kCUDA, 0);
  const auto pinned = util::pin_for(torch::ones({4}), cuda);
  EXPECT_TRUE(pinned.is_pinned());
  EXPECT_EQ(util::pin_for(pinned, cuda).data_ptr(), pinned.data_ptr());  // already pinned: no second copy
  // Keep the stream busy, then copy from pinned temporaries that die at once while their host blocks are
  // handed out again and overwritten: every copy must still deliver what its source held.
  auto busy = torch::randn({4096, 4096}, torch::TensorOptions().device(cuda));
  for (int i = 0; i < 4; ++i) busy = torch::mm(busy, busy).tanh();
  std::vector<torch::Tensor> on_device;
  for (int64_t i = 0; i < 64; ++i) {
    on_device.push_back(util::to_device_async(torch::full({1 << 16}, static_cast<double>(i)), cuda));
    util::pin_for(torch::full({1 << 16}, -1.0), cuda).fill_(-2.0);  // a block the allocator may hand back
  }
  EXPECT_EQ(on_device.front().device(), cuda);
  for (int64_t i = 0; i < 64; ++i) {
    EXPECT_EQ(on_device[static_cast<size_t>(i)].min().item<double>(), static_cast<double>(i)) << i;
    EXPECT_EQ(on_device[static_cast<size_t>(i)].max().item<double>(), static_cast<double>(i)) << i;
  }
  EXPECT_TRUE(torch::isfinite(busy).all().item<bool>());
}

}  // namespace
}  // namespace mdm
