// The bucketed gradient all-reduce on two Gloo ranks (threads of this process): the averaged gradients equal
// the mean of the ranks' own gradients, across many small buckets, with gradient accumulation, with and
// without overlap; a parameter no rank uses keeps an undefined gradient; ranks that use different
// parameters are an error.
#include "../test_util.h"
#include "dist_test_util.h"

#include <mdm/distributed/gradient_bucketer.h>

#include <ATen/CPUGeneratorImpl.h>

namespace mdm::test {
namespace {

using distributed::BucketOptions;
using distributed::GradientBucketer;
using distributed::ProcessGroup;

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    a = register_module("a", torch::nn::Linear(5, 7));
    b = register_module("b", torch::nn::Linear(7, 3));
    unused = register_parameter("unused", torch::zeros({6}));
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(42);  // the same weights on every thread
    for (auto& p : parameters()) p.copy_(torch::randn(p.sizes(), gen, torch::kFloat));
  }
  torch::Tensor forward(const torch::Tensor& x) { return b(torch::tanh(a(x))); }
  torch::nn::Linear a{nullptr}, b{nullptr};
  torch::Tensor unused;
};
TORCH_MODULE(TinyNet);

std::vector<std::pair<std::string, torch::Tensor>> named(TinyNet& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : net->named_parameters(true)) out.emplace_back(item.key(), item.value());
  return out;
}

torch::Tensor input(int64_t rank, int64_t step, int64_t micro) {
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(1000 * step + 10 * rank + micro));
  return torch::randn({4, 5}, gen, torch::kFloat);
}

// loss of one micro-step, scaled by the number of micro-steps (as the trainer does).
torch::Tensor loss(TinyNet& net, const torch::Tensor& x, int64_t micros, bool use_unused) {
  auto l = net->forward(x).square().mean() / static_cast<double>(micros);
  if (use_unused) l = l + net->unused.sum();
  return l;
}

// The mean over ranks of each rank's accumulated gradient, computed without any communication.
std::vector<torch::Tensor> expected_grads(int64_t world, int64_t step, int64_t micros) {
  TinyNet net;
  std::vector<torch::Tensor> sum;
  for (int64_t r = 0; r < world; ++r) {
    for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
    for (int64_t m = 0; m < micros; ++m) loss(net, input(r, step, m), micros, false).backward();
    size_t i = 0;
    for (auto& p : net->parameters()) {
      auto g = p.grad().defined() ? p.grad().clone() : torch::Tensor();
      if (r == 0) {
        sum.push_back(g);
      } else if (g.defined()) {
        sum[i] += g;
      }
      ++i;
    }
  }
  for (auto& g : sum) {
    if (g.defined()) g /= static_cast<double>(world);
  }
  return sum;
}

void check_averaging(bool overlap) {
  constexpr int64_t kMicros = 2, kSteps = 2;
  run_ranks(2, [&](ProcessGroup& g) {
    TinyNet net;
    BucketOptions o;
    o.first_bucket_bytes = 16;
    o.bucket_bytes = 64;  // a bucket every few tensors
    o.overlap = overlap;
    GradientBucketer bucketer(std::shared_ptr<ProcessGroup>(&g, [](ProcessGroup*) {}), named(net), o);
    EXPECT_GE(bucketer.num_buckets(), 4u);
    EXPECT_EQ(bucketer.total_numel(), 5 * 7 + 7 + 7 * 3 + 3 + 6);
    for (int64_t step = 0; step < kSteps; ++step) {
      for (int64_t m = 0; m < kMicros; ++m) {
        bucketer.prepare(m == kMicros - 1);
        loss(net, input(g.rank(), step, m), kMicros, false).backward();
      }
      bucketer.finish();
      if (overlap) {
        EXPECT_GT(bucketer.timings().started_in_backward, 0);
      } else {
        EXPECT_EQ(bucketer.timings().started_in_backward, 0);
      }
      const auto expected = expected_grads(2, step, kMicros);
      size_t i = 0;
      for (auto& p : net->parameters()) {
        if (!expected[i].defined()) {
          EXPECT_FALSE(p.grad().defined()) << "parameter " << i << " has a gradient no rank computed";
        } else {
          ASSERT_TRUE(p.grad().defined()) << "parameter " << i;
          EXPECT_TRUE(torch::allclose(p.grad(), expected[i], 1e-6, 1e-7))
              << "parameter " << i << " step " << step << ": " << (p.grad() - expected[i]).abs().max().item<float>();
        }
        ++i;
      }
      for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();  // the optimizer's zero_grad
    }
  });
}

TEST(GradientBucketer, AveragesOverRanksWithOverlap) { check_averaging(true); }
TEST(GradientBucketer, AveragesOverRanksWithoutOverlap) { check_averaging(false); }

TEST(GradientBucketer, RanksTrainingDifferentParametersIsAnError) {
  try {
    run_ranks(2, [&](ProcessGroup& g) {
      TinyNet net;
      GradientBucketer bucketer(std::shared_ptr<ProcessGroup>(&g, [](ProcessGroup*) {}), named(net));
      bucketer.prepare(true);
      loss(net, input(g.rank(), 0, 0), 1, /*use_unused=*/g.rank() == 1).backward();
      bucketer.finish();
    });
    FAIL() << "expected an error";
  } catch (const DistributedError& e) {
    EXPECT_NE(std::string(e.what()).find("unused received a gradient on 1 of 2 ranks"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mdm::test
