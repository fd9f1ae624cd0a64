// The CUDA paths (run on the GPU machine by scripts/device-build.sh; skipped where there is no CUDA device):
// the denoiser, the text encoder and a whole sampling chain give on the GPU what they give on the CPU.
#include "../test_util.h"

#include <mdm/models/build.h>
#include <mdm/nn/attention.h>
#include <mdm/diffusion/cuda_graph_denoiser.h>
#include <mdm/nn/folded_group_norm.h>
#include <mdm/nn/fusion_check.h>
#include <mdm/nn/group_norm.h>
#include <mdm/nn/pointwise.h>
#include <mdm/perf/device.h>
#include <mdm/pipeline/pipeline.h>
#include <mdm/text/t5_encoder.h>
#include <mdm/util/compat.h>

#include <fmt/format.h>

namespace mdm::test {
namespace {

#define MDM_REQUIRE_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

// fp32 on both sides; TF32 off so that the GPU's matmuls round as the CPU's do.
struct NoTf32 {
  NoTf32() {
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
};

// The tiny nested model, class-conditioned (3 classes): what the sampling tests run.
Config tiny_class_config() {
  Config c = load_config(config_file("tiny_s16s32.yaml"));
  c.model.conditioning = ConditioningKind::Class;
  c.model.num_classes = 3;
  fill_defaults(c);
  return c;
}

TEST(Cuda, DenoiserForwardMatchesCpu) {
  MDM_REQUIRE_CUDA();
  NoTf32 no_tf32;
  Config c = load_config(config_file("tiny_s16s32.yaml"));
  auto model = build_model(c.model);
  randomize(*model, 3);
  model->eval();
  torch::manual_seed(1);
  const auto in = random_model_inputs(*model, c.model.text_feature_dim, 2);
  torch::NoGradGuard no_grad;
  auto cpu = model->forward(in.z, in.t, in.cond);
  model->to(torch::kCUDA);
  std::vector<torch::Tensor> zc;
  for (auto& x : in.z) zc.push_back(x.cuda());
  Conditioning cc;
  cc.text = in.cond.text.cuda();
  cc.text_mask = in.cond.text_mask.cuda();
  auto gpu = model->forward(zc, in.t.cuda(), cc);
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t l = 0; l < cpu.size(); ++l) {
    const double diff = (cpu[l] - gpu[l].cpu()).abs().max().item<double>();
    EXPECT_LT(diff, 1e-3) << "level " << l;
  }
}

TEST(Cuda, T5EncoderMatchesCpuInFp32AndBf16) {
  MDM_REQUIRE_CUDA();
  NoTf32 no_tf32;
  text::T5Config tc;
  tc.vocab_size = 64;
  tc.d_model = 32;
  tc.d_kv = 8;
  tc.d_ff = 64;
  tc.num_layers = 2;
  tc.num_heads = 4;
  torch::manual_seed(0);
  text::T5Encoder t5(tc);
  t5->eval();
  auto ids = torch::randint(3, 64, {2, 9}, torch::kLong);
  auto mask = torch::ones({2, 9});
  mask[1].slice(0, 6) = 0;
  torch::NoGradGuard no_grad;
  auto cpu = t5->forward(ids, mask);
  t5->to(torch::kCUDA);
  auto gpu = t5->forward(ids.cuda(), mask.cuda()).cpu();
  EXPECT_LT((cpu - gpu).abs().max().item<double>(), 1e-4);
  t5->to(torch::kBFloat16);
  auto bf16 = t5->forward(ids.cuda(), mask.cuda()).to(torch::kFloat).cpu();
  EXPECT_LT((cpu - bf16).abs().max().item<double>(), 0.15);
}

// Under bf16 autocast, GroupNorm in bf16 (the default) against autocast's float32 GroupNorm: a whole
// model's outputs and gradients stay close, and a training forward+backward needs less memory, since the
// norms keep bf16 activations for backward instead of float32 copies.
TEST(Cuda, Bf16GroupNormStaysCloseToFloat32NormsAndSavesMemory) {
  MDM_REQUIRE_CUDA();
  Config c = load_config(config_file("tiny_s16s32.yaml"));
  auto model = build_model(c.model);
  randomize(*model, 7);
  model->to(torch::kCUDA);
  const torch::Device cuda(torch::kCUDA);
  torch::manual_seed(2);
  std::vector<torch::Tensor> z;
  for (int64_t r : model->resolutions()) z.push_back(torch::randn({16, 3, r, r}).cuda());
  auto t = torch::linspace(10, 990, 16).cuda();
  Conditioning cond;
  cond.text = torch::randn({16, 7, c.model.text_feature_dim}).cuda();
  cond.text_mask = torch::ones({16, 7}).cuda();
  struct Run {
    std::vector<torch::Tensor> out;
    torch::Tensor grad;  // every parameter's gradient, flattened
    int64_t peak = 0;
  };
  auto run = [&](bool low) {
    nn::set_low_precision_group_norm(low);
    model->zero_grad();
    perf::synchronize(cuda);
    perf::reset_peak_memory(cuda);
    Run r;
    torch::Tensor loss;
    {
      compat::CudaAutocast autocast(true, torch::kBFloat16);
      r.out = model->forward(z, t, cond);
      loss = torch::zeros({}, torch::kCUDA);
      for (auto& o : r.out) loss = loss + o.to(torch::kFloat).square().mean();
    }
    loss.backward();
    perf::synchronize(cuda);
    r.peak = perf::peak_memory_bytes(cuda);
    std::vector<torch::Tensor> grads;
    for (auto& p : model->parameters()) {
      if (p.grad().defined()) grads.push_back(p.grad().flatten());
    }
    r.grad = torch::cat(grads).cpu();
    for (auto& o : r.out) o = o.to(torch::kFloat).cpu();
    return r;
  };
  const Run fp32_norms = run(false);
  const Run bf16_norms = run(true);
  nn::set_low_precision_group_norm(true);
  for (size_t l = 0; l < fp32_norms.out.size(); ++l) {
    const double scale = fp32_norms.out[l].abs().max().item<double>();
    const double diff = (fp32_norms.out[l] - bf16_norms.out[l]).abs().max().item<double>();
    EXPECT_LT(diff, 0.05 * scale) << "level " << l << ": " << diff << " of " << scale;
  }
  const double gdiff = (fp32_norms.grad - bf16_norms.grad).norm().item<double>();
  EXPECT_LT(gdiff, 0.05 * fp32_norms.grad.norm().item<double>()) << gdiff;
  EXPECT_LT(bf16_norms.peak, fp32_norms.peak) << bf16_norms.peak << " vs " << fp32_norms.peak;
}

// The UNet's attention reaches LibTorch's fused SDPA kernels (compat.h): a training forward at 4096
// tokens never holds a [B, heads, L, L] attention matrix (the math fallback makes one per attention and
// keeps it for backward), and its output matches the CPU's.
TEST(Cuda, SpatialAttentionDoesNotMakeTheAttentionMatrix) {
  MDM_REQUIRE_CUDA();
  NoTf32 no_tf32;
  nn::SpatialAttention attn(nn::SpatialAttentionOptions(64).num_heads(8));
  randomize(*attn, 9);
  torch::manual_seed(4);
  auto x = torch::randn({4, 64, 64, 64});
  torch::Tensor cpu;
  {
    torch::NoGradGuard no_grad;
    cpu = attn->forward(x, torch::Tensor(), std::nullopt);
  }
  attn->to(torch::kCUDA);
  const torch::Device cuda(torch::kCUDA);
  auto xc = x.cuda().requires_grad_(true);
  perf::synchronize(cuda);
  perf::reset_peak_memory(cuda);
  const int64_t before = perf::peak_memory_bytes(cuda);
  torch::Tensor out;
  {
    compat::CudaAutocast autocast(true, torch::kBFloat16);
    out = attn->forward(xc, torch::Tensor(), std::nullopt);
  }
  perf::synchronize(cuda);
  const int64_t grew = perf::peak_memory_bytes(cuda) - before;
  const int64_t matrix = int64_t{4} * 8 * 4096 * 4096 * 2;  // one bf16 attention matrix: 1 GiB
  EXPECT_LT(grew, matrix / 4) << grew << " bytes at the forward's peak";
  out.to(torch::kFloat).square().mean().backward();
  EXPECT_TRUE(xc.grad().defined());
  const double diff = (out.to(torch::kFloat).cpu() - cpu).abs().max().item<double>();
  EXPECT_LT(diff, 0.05 * cpu.abs().max().item<double>()) << diff;
}

TEST(Cuda, SamplingChainMatchesCpu) {
  MDM_REQUIRE_CUDA();
  NoTf32 no_tf32;
  const Config c = tiny_class_config();
  auto cpu_model = build_model(c.model);
  randomize(*cpu_model, 5);
  auto gpu_model = build_model(c.model);
  {
    torch::NoGradGuard no_grad;
    auto src = cpu_model->named_parameters(true);
    for (auto& p : gpu_model->named_parameters(true)) p.value().copy_(src[p.key()]);
  }
  GenerateOptions g;
  g.sampler = "ddim";
  g.eta = 0.0;
  g.steps = 8;
  g.class_label = 1;
  g.guidance_scale = 2.0;
  g.threshold.kind = "clip";
  g.num_images = 2;
  g.batch_size = 2;
  Pipeline cpu(c, cpu_model, torch::kCPU);
  Pipeline gpu(c, gpu_model, torch::kCUDA);
  auto a = cpu.generate(g), b = gpu.generate(g);
  ASSERT_EQ(a.size(), b.size());
  for (size_t l = 0; l < a.size(); ++l) EXPECT_LT((a[l] - b[l]).abs().max().item<double>(), 2e-3) << "level " << l;
}

// The fused inference path on the GPU (nn/folded_group_norm.h, nn/pointwise.h): the jiterator kernels
// compile and give ATen's results; a whole model fused equals it unfused, in fp32 to round-off and in
// bf16 within bf16's error, eagerly and replayed from a CUDA graph; Auto fuses large activations.
TEST(Cuda, FusedInferenceKernelsGiveTheUnfusedOpsResults) {
  MDM_REQUIRE_CUDA();
  NoTf32 no_tf32;
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  ASSERT_EQ(nn::pointwise_backend(torch::empty({0}, cuda)), "jiterator");
  torch::manual_seed(11);
  // Channel means far from zero (±16): x − centre must be formed before the scale multiplies it.
  const auto centre = 16 * torch::randn({4, 64, 1, 1}, cuda);
  auto x = (torch::randn({4, 64, 32, 32}, cuda) + centre).to(torch::kBFloat16);
  auto a = torch::randn({4, 64, 1, 1}, cuda), b = torch::randn({4, 64, 1, 1}, cuda);
  auto y = nn::scale_shift_silu(x, centre, a, b);
  ASSERT_EQ(nn::jiterator_failure(), "");
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  auto expected = torch::silu((x.to(torch::kFloat) - centre) * a + b);
  EXPECT_LT((y.to(torch::kFloat) - expected).abs().max().item<double>(), expected.abs().max().item<double>() / 128);
  auto r = torch::randn({4, 64, 32, 32}, cuda).to(torch::kBFloat16), bias = torch::randn({64}, cuda);
  auto sum = nn::add_bias_residual(x, bias, r);
  ASSERT_EQ(nn::jiterator_failure(), "");
  EXPECT_EQ(sum.scalar_type(), torch::kBFloat16);
  auto sum_expected = x.to(torch::kFloat) + bias.view({1, 64, 1, 1}) + r.to(torch::kFloat);
  EXPECT_LT((sum.to(torch::kFloat) - sum_expected).abs().max().item<double>(),
            sum_expected.abs().max().item<double>() / 128);
  const auto plan = nn::fusion_plan(torch::empty({nn::kFusionMinElements, 1, 1}, cuda));
  EXPECT_TRUE(plan.active && plan.fold_bias && plan.fused_kernels);

  Config c = load_config(config_file("tiny_s16s32.yaml"));
  auto model = build_model(c.model);
  randomize(*model, 12);
  model->to(torch::kCUDA);
  model->eval();
  auto in = random_model_inputs(*model, c.model.text_feature_dim, 4, torch::kCUDA);
  auto& z = in.z;
  auto& t = in.t;
  const auto& cond = in.cond;
  auto forward = [&](nn::Fusion fusion, bool bf16) {
    const auto was = nn::inference_fusion();
    nn::set_inference_fusion(fusion);
    compat::CudaAutocast autocast(bf16, torch::kBFloat16);
    auto out = model->forward(z, t, cond);
    nn::set_inference_fusion(was);
    for (auto& o : out) o = o.to(torch::kFloat).cpu();
    return out;
  };
  for (bool bf16 : {false, true}) {
    const auto plain = forward(nn::Fusion::Off, bf16);
    const auto fused = forward(nn::Fusion::Always, bf16);
    ASSERT_EQ(nn::jiterator_failure(), "");
    for (size_t l = 0; l < plain.size(); ++l) {
      const double scale = plain[l].abs().max().item<double>();
      const double diff = (plain[l] - fused[l]).abs().max().item<double>();
      EXPECT_LT(diff, (bf16 ? 0.05 : 1e-4) * scale) << (bf16 ? "bf16" : "fp32") << " level " << l << ": " << diff;
    }
  }
  // The fused kernels inside a CUDA graph (compiled during the warm-up, replayed).
  const auto was = nn::inference_fusion();
  nn::set_inference_fusion(nn::Fusion::Always);
  CudaGraphDenoiser graph(
      [&](const std::vector<torch::Tensor>& zz, const torch::Tensor& tt) {
        compat::CudaAutocast autocast(true, torch::kBFloat16);
        return model->forward(zz, tt, cond);
      },
      z);
  // The graph sees the step index t − 1 as a [B] tensor filled with one value: compare at one t.
  t.fill_(499);
  const auto eager_t = forward(nn::Fusion::Always, true);
  auto replayed = graph(z, 500);
  nn::set_inference_fusion(was);
  for (size_t l = 0; l < eager_t.size(); ++l) {
    const double diff = (replayed[l].to(torch::kFloat).cpu() - eager_t[l]).abs().max().item<double>();
    EXPECT_LT(diff, 1e-2 * eager_t[l].abs().max().item<double>()) << "level " << l;
  }
}

// Channels-last activations (mdm-bench --channels-last) take the fused inference path under Auto, with their
// statistics one sample at a time, and give what contiguous ones give; with autograd on they stay unfused.
TEST(Cuda, ChannelsLastActivationsFuseInInferenceWithTheContiguousResults) {
  MDM_REQUIRE_CUDA();
  NoTf32 no_tf32;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  torch::manual_seed(21);
  // Above kFusionMinElements, channel means far from zero.
  const auto x = torch::randn({2, 128, 256, 256}, cuda) + 8 * torch::randn({2, 128, 1, 1}, cuda);
  const auto x_cl = x.contiguous(torch::MemoryFormat::ChannelsLast);
  ASSERT_TRUE(nn::channels_last(x_cl));
  EXPECT_FALSE(nn::fusion_plan(x_cl).active) << "autograd on: training's backward reduction would copy it";
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(nn::fusion_plan(x_cl).active);
  }
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const auto [mean, var] = nn::channel_moments(x.to(dtype));
    const auto [mean_cl, var_cl] = nn::channel_moments(x_cl.to(dtype));
    EXPECT_EQ(mean_cl.sizes(), mean.sizes());
    EXPECT_LT((mean_cl - mean).abs().max().item<double>(), 1e-5 * mean.abs().max().item<double>());
    EXPECT_LT((var_cl - var).abs().max().item<double>(), 1e-4 * var.abs().max().item<double>());
  }

  Config c = load_config(config_file("tiny_s16s32.yaml"));
  auto model = build_model(c.model), model_cl = build_model(c.model);
  randomize(*model, 22);
  randomize(*model_cl, 22);
  model->to(torch::kCUDA);
  model_cl->to(torch::kCUDA);
  to_channels_last(*model_cl);
  model->eval();
  model_cl->eval();
  const auto in = random_model_inputs(*model, c.model.text_feature_dim, 4, torch::kCUDA);
  std::vector<torch::Tensor> z_cl;
  for (const auto& z : in.z) z_cl.push_back(z.contiguous(torch::MemoryFormat::ChannelsLast));
  torch::NoGradGuard no_grad;
  const auto was = nn::inference_fusion();
  nn::set_inference_fusion(nn::Fusion::Always);  // the tiny model's activations are below Auto's size
  for (bool bf16 : {false, true}) {
    compat::CudaAutocast autocast(bf16, torch::kBFloat16);
    const auto plain = model->forward(in.z, in.t, in.cond);
    const auto channels = model_cl->forward(z_cl, in.t, in.cond);
    ASSERT_EQ(nn::jiterator_failure(), "");
    for (size_t l = 0; l < plain.size(); ++l) {
      EXPECT_TRUE(nn::channels_last(channels[l])) << "level " << l;
      const auto p = plain[l].to(torch::kFloat), q = channels[l].to(torch::kFloat);
      const double diff = (p - q).abs().max().item<double>(), scale = p.abs().max().item<double>();
      EXPECT_LT(diff, (bf16 ? 0.05 : 1e-4) * scale) << (bf16 ? "bf16" : "fp32") << " level " << l << ": " << diff;
    }
  }
  nn::set_inference_fusion(was);
}

// The fused training path on the GPU (nn/folded_group_norm.h): its two backward kernels and the backward
// reduction against float math and the CPU, and a whole model's gradients fused against unfused, in fp32
// and under bf16 autocast, with a smaller peak memory (it keeps h alone for the norms' backward).
TEST(Cuda, FusedTrainingPathGivesTheUnfusedGradientsInLessMemory) {
  MDM_REQUIRE_CUDA();
  NoTf32 no_tf32;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  ASSERT_EQ(nn::pointwise_backend(torch::empty({0}, cuda)), "jiterator");
  auto max_diff = [](const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kFloat).cpu() - b.to(torch::kFloat).cpu()).abs().max().item<double>();
  };
  auto max_abs = [](const torch::Tensor& a) { return a.to(torch::kFloat).abs().max().item<double>(); };
  torch::manual_seed(14);
  // Channel means far from zero (±16), as in the inference test.
  const auto centre = 16 * torch::randn({4, 64, 1, 1}, cuda);
  const auto x = (torch::randn({4, 64, 32, 32}, cuda) + centre).to(torch::kBFloat16);
  const auto dy = torch::randn({4, 64, 32, 32}, cuda).to(torch::kBFloat16);
  const auto a = torch::randn({4, 64, 1, 1}, cuda), b = torch::randn({4, 64, 1, 1}, cuda);
  const auto dz = nn::scale_shift_silu_backward(dy, x, centre, a, b);
  ASSERT_EQ(nn::jiterator_failure(), "");
  EXPECT_EQ(dz.scalar_type(), torch::kBFloat16);
  {
    auto bf = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat); };
    const auto z = (x.to(torch::kFloat) - centre) * bf(a) + bf(b);
    const auto s = torch::sigmoid(z);
    const auto expected = dy.to(torch::kFloat) * s * (1 + z * (1 - s));
    EXPECT_LT(max_diff(dz, expected), max_abs(expected) / 128);
  }
  {
    const auto alpha = torch::randn({4, 64, 1, 1}, cuda), beta = torch::randn({4, 64, 1, 1}, cuda);
    const auto gamma = torch::randn({4, 64, 1, 1}, cuda);
    const auto y = nn::affine_combination(dz, x, centre, alpha, beta, gamma);
    ASSERT_EQ(nn::jiterator_failure(), "");
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
    const auto expected = dz.to(torch::kFloat) * alpha + beta * (x.to(torch::kFloat) - centre) + gamma;
    EXPECT_LT(max_diff(y, expected), max_abs(expected) / 128);
  }
  // The backward's channel sums (SyncBatchNorm's reduction kernel) against float64 sums of the same values.
  // In float32 they are float32 sums. In bf16 the kernel passes each term dz·(x − mean) and each partial
  // sum of its warp reduction through bf16 (ATen's Float2 is constructed from the input's dtype: GradOp's
  // terms and SumReduceOp's shuffled halves), so its sums carry bf16 rounding: the first GPU run (torch
  // 2.11, H200) found 0.32 and 0.33 on sums up to ~64, and a CPU emulation of that rounding gives 0.42 and
  // 0.37: about one bf16 rounding of the sum, which the norm-affine and scale-shift gradients carry (the
  // input's gradient sees it divided by the group's size; the whole-model comparison below covers both). The
  // bound for bf16 is 2⁻⁶ of the largest sum, a few times that rounding; a wrong mean or channel order is
  // off by far more.
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const auto xs = x.to(dtype), dzs = dz.to(dtype);
    const auto mean = nn::channel_moments(xs).first;
    const auto [sum_dz, sum_dz_xmu] = nn::channel_gradient_sums(dzs, xs, mean);
    const auto [cpu_dz, cpu_dz_xmu] = nn::channel_gradient_sums(dzs.cpu(), xs.cpu(), mean.cpu());
    EXPECT_EQ(sum_dz.scalar_type(), torch::kFloat);
    EXPECT_EQ(sum_dz_xmu.scalar_type(), torch::kFloat);
    const auto d64 = dzs.cpu().to(torch::kDouble).reshape({4, 64, -1});
    const auto xmu64 = xs.cpu().to(torch::kDouble).reshape({4, 64, -1}) - mean.cpu().to(torch::kDouble).unsqueeze(-1);
    const auto exact_dz = d64.sum(-1), exact_dz_xmu = (d64 * xmu64).sum(-1);
    const auto aten_dz = dzs.reshape({4, 64, -1}).sum(-1, false, torch::kFloat);
    auto explain = [&](const char* what, const torch::Tensor& gpu, const torch::Tensor& exact) {
      const auto i = (gpu.to(torch::kDouble).cpu() - exact).abs().reshape({-1}).argmax().item<int64_t>();
      return fmt::format("{} {} at channel {}: GPU {:.6f}, float64 {:.6f}, ATen's float32 sum of dz on the GPU {:.6f}",
                         c10::toString(dtype), what, i, gpu.reshape({-1})[i].item<double>(),
                         exact.reshape({-1})[i].item<double>(), aten_dz.reshape({-1})[i].item<double>());
    };
    const double bound = dtype == torch::kFloat ? 1e-5 : 1.0 / 64;
    EXPECT_LT(max_diff(cpu_dz, exact_dz), 1e-5 * max_abs(exact_dz));
    EXPECT_LT(max_diff(cpu_dz_xmu, exact_dz_xmu), 1e-5 * max_abs(exact_dz_xmu));
    EXPECT_LT(max_diff(sum_dz, exact_dz), bound * max_abs(exact_dz)) << explain("sum of dz", sum_dz, exact_dz);
    EXPECT_LT(max_diff(sum_dz_xmu, exact_dz_xmu), bound * max_abs(exact_dz_xmu))
        << explain("sum of dz·(x − mean)", sum_dz_xmu, exact_dz_xmu);
  }

  Config c = load_config(config_file("tiny_s16s32.yaml"));
  auto model = build_model(c.model);
  randomize(*model, 15);
  model->to(torch::kCUDA);
  auto in = random_model_inputs(*model, c.model.text_feature_dim, 16, torch::kCUDA);
  struct Run {
    torch::Tensor grad;  // every parameter's gradient, flattened
    int64_t peak = 0;
  };
  auto run = [&](nn::Fusion fusion, bool bf16) {
    const auto was = nn::training_fusion();
    nn::set_training_fusion(fusion);
    model->zero_grad();
    perf::synchronize(torch::kCUDA);
    perf::reset_peak_memory(torch::kCUDA);
    torch::Tensor loss = torch::zeros({}, cuda);
    {
      compat::CudaAutocast autocast(bf16, torch::kBFloat16);
      const auto out = model->forward(in.z, in.t, in.cond);
      for (size_t l = 0; l < out.size(); ++l) loss = loss + (out[l].to(torch::kFloat) - in.z[l]).square().mean();
    }
    loss.backward();
    perf::synchronize(torch::kCUDA);
    nn::set_training_fusion(was);
    Run r;
    r.peak = perf::peak_memory_bytes(torch::kCUDA);
    std::vector<torch::Tensor> grads;
    for (auto& p : model->parameters()) {
      if (p.grad().defined()) grads.push_back(p.grad().flatten().to(torch::kFloat));
    }
    r.grad = torch::cat(grads).cpu();
    return r;
  };
  for (bool bf16 : {false, true}) {
    // Warm-up of both: one-time allocations (library workspaces) then count in neither side's peak.
    run(nn::Fusion::Always, bf16);
    run(nn::Fusion::Off, bf16);
    const Run plain = run(nn::Fusion::Off, bf16);
    const Run fused = run(nn::Fusion::Always, bf16);
    ASSERT_EQ(nn::jiterator_failure(), "");
    ASSERT_EQ(fused.grad.numel(), plain.grad.numel());
    const double diff = (fused.grad - plain.grad).norm().item<double>(), norm = plain.grad.norm().item<double>();
    EXPECT_LT(diff, (bf16 ? 0.05 : 1e-4) * norm) << (bf16 ? "bf16" : "fp32") << ": " << diff << " of " << norm;
    EXPECT_LT(fused.peak, plain.peak) << (bf16 ? "bf16" : "fp32") << ": " << fused.peak << " vs " << plain.peak;
  }
}

// The check that lets Fusion::Auto fuse on a device (nn/fusion_check.h) passes on the GPU in float32 and
// bf16, and Auto then fuses a large activation in training and in inference.
TEST(Cuda, FusedPathPassesItsCheckAndAutoFusesLargeActivations) {
  MDM_REQUIRE_CUDA();
  NoTf32 no_tf32;
  const torch::Device cuda(torch::kCUDA, 0);
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const auto check = nn::check_fusion(cuda, dtype);
    std::cout << "fusion check, " << c10::toString(dtype) << ": " << nn::to_string(check) << "\n";
    ASSERT_TRUE(check.ran);
    EXPECT_TRUE(check.passed) << check.detail;
    EXPECT_LT(check.max_error, dtype == torch::kFloat ? 1e-5 : 2e-2) << check.detail;
  }
  const auto x = torch::empty({4, 64, 256, 128}, torch::TensorOptions().device(cuda).dtype(torch::kBFloat16));
  ASSERT_GE(x.numel(), nn::kFusionMinElements);
  const auto was_training = nn::training_fusion(), was_inference = nn::inference_fusion();
  nn::set_training_fusion(nn::Fusion::Auto);
  nn::set_inference_fusion(nn::Fusion::Auto);
  EXPECT_TRUE(nn::fusion_plan(x).active);
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(nn::fusion_plan(x).active);
  }
  EXPECT_FALSE(nn::fusion_plan(x.narrow(0, 0, 1)).active) << "below kFusionMinElements";
  nn::set_training_fusion(was_training);
  nn::set_inference_fusion(was_inference);
}

// mdm-sample's pipeline on CUDA replays the network from a CUDA graph (GenerateOptions::cuda_graphs, the
// default) and gives what eager calls give — with DPM-Solver++, which keeps earlier steps' outputs.
TEST(Cuda, PipelineWithCudaGraphsGivesTheEagerImages) {
  MDM_REQUIRE_CUDA();
  NoTf32 no_tf32;
  const Config c = tiny_class_config();
  auto model = build_model(c.model);
  randomize(*model, 13);
  Pipeline pipe(c, model, torch::kCUDA);
  for (const char* sampler : {"ddim", "dpmsolver++"}) {
    GenerateOptions g;
    g.sampler = sampler;
    g.eta = 0.0;
    g.steps = 6;
    g.class_label = 2;
    g.guidance_scale = 2.0;
    g.threshold.kind = "clip";
    g.num_images = 3;
    g.batch_size = 2;  // two batches of different sizes: a graph each
    g.cuda_graphs = false;
    const auto eager = pipe.generate(g);
    g.cuda_graphs = true;
    const auto graphed = pipe.generate(g);
    ASSERT_EQ(eager.size(), graphed.size());
    for (size_t l = 0; l < eager.size(); ++l) {
      EXPECT_LT((eager[l] - graphed[l]).abs().max().item<double>(), 1e-4) << sampler << " level " << l;
    }
  }
}

}  // namespace
}  // namespace mdm::test
