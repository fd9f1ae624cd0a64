// Our Adam/AdamW against LibTorch's torch::optim implementations, the warmup factor, gradient clipping.
#include "../test_util.h"

#include <mdm/train/adam.h>
#include <mdm/train/train_checkpoint.h>

#include <cstdio>
#include <limits>

namespace mdm::test {
namespace {

using train::Adam;

struct Problem {
  torch::Tensor w, b;
  explicit Problem(uint64_t seed) {
    torch::manual_seed(seed);
    w = torch::randn({5, 3}).requires_grad_(true);
    b = torch::randn({3}).requires_grad_(true);
  }
  void backward(int step) const {
    torch::manual_seed(100 + step);
    auto x = torch::randn({8, 5});
    ((torch::matmul(x, w) + b).tanh().square().sum()).backward();
  }
};

void compare_with_libtorch(const std::string& name, double weight_decay) {
  Problem ours(1), theirs(1);
  OptimizerConfig cfg;
  cfg.name = name;
  cfg.lr = 0.01;
  cfg.betas = {0.9, 0.99};
  cfg.eps = 1e-8;
  cfg.weight_decay = weight_decay;
  Adam adam({{"w", ours.w}, {"b", ours.b}}, cfg);
  std::unique_ptr<torch::optim::Optimizer> ref;
  if (name == "adam") {
    ref = std::make_unique<torch::optim::Adam>(
        std::vector<torch::Tensor>{theirs.w, theirs.b},
        torch::optim::AdamOptions(0.01).betas({0.9, 0.99}).eps(1e-8).weight_decay(weight_decay));
  } else {
    ref = std::make_unique<torch::optim::AdamW>(
        std::vector<torch::Tensor>{theirs.w, theirs.b},
        torch::optim::AdamWOptions(0.01).betas({0.9, 0.99}).eps(1e-8).weight_decay(weight_decay));
  }
  for (int step = 0; step < 20; ++step) {
    ours.backward(step);
    theirs.backward(step);
    adam.step(0.01);
    adam.zero_grad();
    ref->step();
    ref->zero_grad();
  }
  EXPECT_TRUE(torch::allclose(ours.w, theirs.w, 1e-6, 1e-7)) << name << " " << (ours.w - theirs.w).abs().max().item<float>();
  EXPECT_TRUE(torch::allclose(ours.b, theirs.b, 1e-6, 1e-7)) << name;
  EXPECT_GT((ours.w - Problem(1).w).abs().max().item<float>(), 0.05f);  // it did move
}

TEST(Adam, MatchesLibTorchAdam) { compare_with_libtorch("adam", 0.0); }
TEST(Adam, MatchesLibTorchAdamWithL2) { compare_with_libtorch("adam", 0.1); }
TEST(Adam, MatchesLibTorchAdamW) { compare_with_libtorch("adamw", 0.1); }

// Where LibTorch has a fused Adam kernel (CUDA from 2.0, the CPU from 2.4) step() runs it; it must agree
// with the _foreach_ ops (set_fused(false)) to float32 round-off: both weight-decay modes, parameters at
// two step counts (one list each), moments too. On LibTorch 1.13 both sides run the _foreach_ ops.
// Both sides get the same gradients each step (those of the fused side's weights), so what differs is only
// each update's arithmetic (the fused kernel's operation order and FMAs against the _foreach_ ops): at
// most a couple of float32 ulps of a tensor's scale per step, kSteps × 2 ulps in all. (With gradients
// that followed each side's own weights, the first GPU run measured moments 2.0e-6 of their scale apart.)
TEST(Adam, FusedKernelAgreesWithTheForeachOpsOnCpuAndCuda) {
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA, 0);
  for (const auto& device : devices) {
    for (const auto& [name, decay] : std::vector<std::pair<std::string, double>>{{"adam", 0.1}, {"adamw", 0.1}}) {
      OptimizerConfig cfg;
      cfg.name = name;
      cfg.lr = 0.01;
      cfg.betas = {0.9, 0.99};
      cfg.weight_decay = decay;
      auto make = [&] {
        torch::manual_seed(3);
        return std::vector<torch::Tensor>{torch::randn({64, 33}).to(device).requires_grad_(true),
                                          torch::randn({33}).to(device).requires_grad_(true)};
      };
      auto fused = make(), plain = make();
      Adam a({{"w", fused[0]}, {"b", fused[1]}}, cfg), b({{"w", plain[0]}, {"b", plain[1]}}, cfg);
      b.set_fused(false);
      constexpr int kSteps = 12;
      for (int step = 0; step < kSteps; ++step) {
        torch::manual_seed(100 + step);
        auto x = torch::randn({8, 64}).to(device);
        (torch::matmul(x, fused[0]) + fused[1]).tanh().square().sum().backward();
        for (size_t i = 0; i < 2; ++i) plain[i].mutable_grad() = fused[i].grad().clone();
        if (step < 4) fused[1].mutable_grad() = plain[1].mutable_grad() = torch::Tensor();  // b joins later
        a.step(0.01);
        b.step(0.01);
        a.zero_grad();
        b.zero_grad();
      }
      const std::string where = name + " on " + device.str();
      for (size_t i = 0; i < 2; ++i) {
        EXPECT_TRUE(torch::allclose(fused[i], plain[i], 1e-6, 1e-7))
            << where << ": " << (fused[i] - plain[i]).abs().max().item<float>();
      }
      const auto sa = a.state_dict(), sb = b.state_dict();
      ASSERT_EQ(sa.size(), sb.size());
      for (size_t i = 0; i < sa.size(); ++i) {
        // Moments pass through zero where a gradient changes sign: the tolerance is float32 round-off of the
        // tensor's scale, not of each value.
        const auto x = sa[i].second.cpu().to(torch::kDouble), y = sb[i].second.cpu().to(torch::kDouble);
        const double scale = y.abs().max().item<double>(), diff = (x - y).abs().max().item<double>();
        const double bound = kSteps * 2 * std::numeric_limits<float>::epsilon() * scale;
        EXPECT_LE(diff, bound) << where << " " << sa[i].first << ": max |difference| " << diff << " of " << scale;
        std::printf("%s %s: moments %.2e of their scale apart (bound %.2e)\n", where.c_str(), sa[i].first.c_str(),
                    diff / scale, bound / scale);
      }
      EXPECT_GT((fused[0] - make()[0]).abs().max().item<float>(), 0.05f) << where;  // it did move
    }
  }
}

TEST(Adam, StateRoundTripContinuesIdentically) {
  OptimizerConfig cfg;
  Problem a(2), b(2);
  Adam opt_a({{"w", a.w}, {"b", a.b}}, cfg);
  for (int s = 0; s < 3; ++s) {
    a.backward(s);
    opt_a.step(1e-3);
    opt_a.zero_grad();
  }
  // b gets a's weights and optimizer state, then both continue.
  {
    torch::NoGradGuard g;
    b.w.copy_(a.w);
    b.b.copy_(a.b);
  }
  Adam opt_b({{"w", b.w}, {"b", b.b}}, cfg);
  auto sd = opt_a.state_dict();
  opt_b.load_state_dict(std::map<std::string, torch::Tensor>(sd.begin(), sd.end()), "test");
  for (int s = 3; s < 6; ++s) {
    a.backward(s);
    b.backward(s);
    opt_a.step(1e-3);
    opt_b.step(1e-3);
    opt_a.zero_grad();
    opt_b.zero_grad();
  }
  EXPECT_TRUE(torch::equal(a.w, b.w));
  EXPECT_TRUE(torch::equal(a.b, b.b));
}

TEST(Adam, ParametersWithoutGradientsKeepValueAndState) {
  OptimizerConfig cfg;
  Problem p(3);
  Adam opt({{"w", p.w}, {"b", p.b}}, cfg);
  auto b0 = p.b.detach().clone();
  torch::manual_seed(0);
  (torch::matmul(torch::randn({2, 5}), p.w).sum()).backward();  // b gets no gradient
  p.b.mutable_grad() = torch::Tensor();
  opt.step(0.1);
  EXPECT_TRUE(torch::equal(p.b, b0));
  const auto sd = opt.state_dict();
  ASSERT_EQ(sd.size(), 3u);  // w.exp_avg, w.exp_avg_sq, w.step
  EXPECT_EQ(sd[0].first, "w.exp_avg");
  EXPECT_EQ(sd[2].second.item<double>(), 1.0);
}

// A progressive stage adds parameters to training later, so parameters come to differ in their step count;
// the multi-tensor update groups them by it, and each keeps its own bias correction, as in LibTorch.
TEST(Adam, ParametersJoiningLaterKeepTheirOwnStepCount) {
  Problem ours(6), theirs(6);
  OptimizerConfig cfg;
  cfg.lr = 0.01;
  cfg.betas = {0.9, 0.99};
  Adam adam({{"w", ours.w}, {"b", ours.b}}, cfg);
  torch::optim::Adam ref(std::vector<torch::Tensor>{theirs.w, theirs.b},
                         torch::optim::AdamOptions(0.01).betas({0.9, 0.99}).eps(1e-8));
  for (int step = 0; step < 8; ++step) {
    ours.backward(step);
    theirs.backward(step);
    if (step < 3) {  // b is not trained yet
      ours.b.mutable_grad() = torch::Tensor();
      theirs.b.mutable_grad() = torch::Tensor();
    }
    adam.step(0.01);
    adam.zero_grad();
    ref.step();
    ref.zero_grad();
  }
  EXPECT_TRUE(torch::allclose(ours.w, theirs.w, 1e-6, 1e-7)) << (ours.w - theirs.w).abs().max().item<float>();
  EXPECT_TRUE(torch::allclose(ours.b, theirs.b, 1e-6, 1e-7)) << (ours.b - theirs.b).abs().max().item<float>();
  double w_step = 0, b_step = 0;
  for (const auto& [name, t] : adam.state_dict()) {
    if (name == "w.step") w_step = t.item<double>();
    if (name == "b.step") b_step = t.item<double>();
  }
  EXPECT_EQ(w_step, 8.0);
  EXPECT_EQ(b_step, 5.0);
}

TEST(Adam, StateOfAnUnknownParameterIsAnError) {
  OptimizerConfig cfg;
  Problem p(4);
  Adam opt({{"w", p.w}}, cfg);
  std::map<std::string, torch::Tensor> bad = {{"v.exp_avg", torch::zeros({5, 3})}};
  EXPECT_THROW(opt.load_state_dict(bad, "x"), CheckpointError);
  std::map<std::string, torch::Tensor> shape = {{"w.exp_avg", torch::zeros({3, 5})}, {"w.exp_avg_sq", torch::zeros({5, 3})},
                                                {"w.step", torch::tensor(1.0, torch::kDouble)}};
  EXPECT_THROW(opt.load_state_dict(shape, "x"), CheckpointError);
}

TEST(Adam, WarmupIsLinearThenConstant) {
  EXPECT_DOUBLE_EQ(train::warmup_factor(0, 100), 0.01);  // max(1, step) / warmup
  EXPECT_DOUBLE_EQ(train::warmup_factor(1, 100), 0.01);
  EXPECT_DOUBLE_EQ(train::warmup_factor(50, 100), 0.5);
  EXPECT_DOUBLE_EQ(train::warmup_factor(100, 100), 1.0);
  EXPECT_DOUBLE_EQ(train::warmup_factor(10000, 100), 1.0);
  EXPECT_DOUBLE_EQ(train::warmup_factor(5, 0), 1.0);
}

TEST(Adam, ClipGradNormMatchesLibTorch) {
  Problem a(5), b(5);
  a.backward(0);
  b.backward(0);
  const double ours = train::clip_grad_norm({{"w", a.w}, {"b", a.b}}, 0.5);
  const double theirs = torch::nn::utils::clip_grad_norm_(std::vector<torch::Tensor>{b.w, b.b}, 0.5);
  EXPECT_NEAR(ours, theirs, 1e-5 * theirs);
  EXPECT_GT(ours, 0.5);
  EXPECT_TRUE(torch::allclose(a.w.grad(), b.w.grad(), 1e-5, 1e-7));
  const double after = torch::cat({a.w.grad().flatten(), a.b.grad().flatten()}).norm().item<double>();
  EXPECT_NEAR(after, 0.5, 1e-5);
  a.w.mutable_grad().index_put_({0, 0}, std::numeric_limits<float>::quiet_NaN());
  EXPECT_FALSE(std::isfinite(train::clip_grad_norm({{"w", a.w}, {"b", a.b}}, 0.5)));
}

TEST(TrainCheckpoint, Base64RoundTrip) {
  for (size_t n : {0u, 1u, 2u, 3u, 4u, 5u, 100u, 5056u}) {
    std::vector<uint8_t> bytes(n);
    for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>((i * 131 + 7) & 0xff);
    EXPECT_EQ(train::base64_decode(train::base64_encode(bytes)), bytes) << n;
  }
  EXPECT_EQ(train::base64_encode({'M', 'a', 'n'}), "TWFu");
  EXPECT_EQ(train::base64_encode({'M', 'a'}), "TWE=");
  EXPECT_THROW(train::base64_decode("TW?u"), Error);
  EXPECT_THROW(train::base64_decode("TWF"), Error);
}

TEST(TrainCheckpoint, StateJsonRoundTrip) {
  train::TrainState s;
  s.step = 1234;
  s.stage = 1;
  s.lr = 3e-4;
  s.data_epoch = 5;
  s.data_cursor = 77;
  s.rng = {1, 2, 3, 250};
  s.default_rng = {9};
  s.nonfinite_steps = 2;
  s.skipped_records = 3;
  const auto back = train::TrainState::from_json(s.to_json(), "x");
  EXPECT_EQ(back.step, 1234);
  EXPECT_EQ(back.stage, 1);
  EXPECT_DOUBLE_EQ(back.lr, 3e-4);
  EXPECT_EQ(back.data_epoch, 5);
  EXPECT_EQ(back.data_cursor, 77);
  EXPECT_EQ(back.rng, s.rng);
  EXPECT_EQ(back.default_rng, s.default_rng);
  EXPECT_EQ(back.skipped_records, 3);
  EXPECT_THROW(train::TrainState::from_json("{\"step\": 1}", "state.json"), CheckpointError);
}

}  // namespace
}  // namespace mdm::test
