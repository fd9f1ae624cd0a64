#include <mdm/diffusion/guidance.h>
#include <mdm/models/build.h>
#include <mdm/models/state_dict.h>
#include <mdm/models/summary.h>
#include <mdm/nn/folded_group_norm.h>
#include <mdm/nn/fusion_check.h>
#include <mdm/nn/group_norm.h>
#include <mdm/nn/pointwise.h>
#include <mdm/perf/bench.h>
#include <mdm/perf/cpu_allocator.h>
#include <mdm/perf/device.h>
#include <mdm/perf/profile_trace.h>
#include <mdm/train/progressive.h>
#include <mdm/train/train_step.h>
#include <mdm/util/compat.h>
#include <mdm/util/error.h>
#include <mdm/version.h>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "bench_internal.h"

namespace mdm::perf {
namespace detail {

Conditioning synthetic_conditioning(const ModelConfig& model, int64_t batch, int64_t tokens,
                                    const torch::Device& device, at::Generator& gen, bool unconditional) {
  Conditioning c;
  switch (model.conditioning) {
    case ConditioningKind::Class:
      c.labels = unconditional ? torch::full({batch}, model.num_classes, torch::kLong)
                               : torch::randint(0, model.num_classes, {batch}, gen, torch::kLong);
      c.labels = c.labels.to(device);
      break;
    case ConditioningKind::Text:
      c.text = torch::randn({batch, tokens, model.text_feature_dim}, gen, torch::kFloat).to(device);  // [B, L, D]
      c.text_mask = torch::ones({batch, tokens}, torch::dtype(torch::kFloat).device(device));         // [B, L]
      break;
    case ConditioningKind::None:
      break;
  }
  return c;
}

}  // namespace detail

namespace {

torch::Device parse_device(const std::string& name) {
  try {
    torch::Device device(name);
    if (device.is_cuda() && !torch::cuda::is_available()) {
      throw Error(fmt::format("--device {}: no CUDA device is available{}", name,
                              built_with_cuda() ? "" : " (this libmdm was built against a LibTorch without CUDA)"));
    }
    if (!device.is_cpu() && !device.is_cuda()) throw Error(fmt::format("--device {}: use cpu, cuda or cuda:N", name));
    return device;
  } catch (const c10::Error&) {
    throw Error(fmt::format("--device {}: not a device name (cpu | cuda | cuda:N)", name));
  }
}

std::string resolve_precision(const Config& config, const BenchOptions& o, const torch::Device& device) {
  std::string p = o.precision.empty() ? (device.is_cuda() ? config.train.precision : "fp32") : o.precision;
  if (p != "fp32" && p != "bf16") throw Error(fmt::format("--precision {}: use fp32 or bf16", p));
  if (p == "bf16" && !device.is_cuda()) {
    throw Error("--precision bf16 is CUDA autocast (as in training); on the CPU use --precision fp32");
  }
  return p;
}

// 4-D weights (convolutions) in channels-last memory format; Adam's moments and the EMA follow them.
void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

std::string machine_description() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return fmt::format("{}: {}, {} logical cores", host, device_name(torch::kCPU), std::thread::hardware_concurrency());
}

struct TrainingSetup {
  std::shared_ptr<Denoiser> model, active;
  std::unique_ptr<train::Ema> ema;
  std::unique_ptr<train::Adam> adam;
};

TrainingSetup build_training(const Config& config, size_t levels, const torch::Device& device, bool channels_last,
                             bool fused_adam) {
  TrainingSetup s;
  s.model = build_model(config.model);
  s.model->to(device);
  auto shadow = build_model(config.model);
  shadow->to(device);
  if (channels_last) {
    to_channels_last(*s.model);
    to_channels_last(*shadow);
  }
  s.ema = std::make_unique<train::Ema>(*s.model, shadow, config.train.ema_decay);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : s.model->named_parameters(true)) params.emplace_back(item.key(), item.value());
  s.adam = std::make_unique<train::Adam>(std::move(params), config.train.optimizer);
  s.adam->set_fused(fused_adam);
  s.active = train::inner_model(s.model, levels);
  return s;
}

// Runs one phase with a fresh peak-memory window; returns its timing and peak.
Timing measure_phase(const std::function<void()>& fn, const torch::Device& device, const BenchOptions& o,
                     int64_t& peak_bytes, bool& peak_reset) {
  peak_reset = reset_peak_memory(device) && peak_reset;
  auto timing = time_repeats(fn, device, o.warmup, o.repeats);
  peak_bytes = peak_memory_bytes(device);
  return timing;
}

// What the options resolve to for this config, checked.
struct Plan {
  torch::Device device = torch::kCPU;
  std::string precision;
  bool autocast = false;
  int64_t stage = 0;  // 1-based
  size_t levels = 0;  // trained by the stage, from the lowest
  int64_t batch = 0;
  int64_t tokens = 0;  // synthetic text tokens (0: no text conditioning)
};

Plan make_plan(const Config& config, const BenchOptions& o) {
  if (o.threads < 0) throw Error(fmt::format("--threads {}: must be 0 (default) or positive", o.threads));
  if (o.repeats < 1) throw Error(fmt::format("--repeats {}: must be at least 1", o.repeats));
  if (o.warmup < 0) throw Error(fmt::format("--warmup {}: must not be negative", o.warmup));
  Plan p;
  p.device = parse_device(o.device);
  p.precision = resolve_precision(config, o, p.device);
  p.autocast = p.precision == "bf16";
  const auto& stages = config.train.stages;
  if (stages.empty()) throw ConfigError(fmt::format("{}: train.stages is empty", config.source));
  p.stage = o.stage == 0 ? static_cast<int64_t>(stages.size()) : o.stage;
  if (p.stage < 1 || p.stage > static_cast<int64_t>(stages.size())) {
    throw Error(fmt::format("--stage {}: {} has {} training stage(s)", o.stage, config.source, stages.size()));
  }
  const TrainStage& st = stages[p.stage - 1];
  p.levels = st.resolutions.size();
  p.batch = o.batch_size > 0 ? o.batch_size : (st.batch_size > 0 ? st.batch_size : config.train.batch_size);
  if (config.model.conditioning == ConditioningKind::Text) {
    p.tokens = o.text_tokens > 0 ? o.text_tokens : config.text.max_tokens;
  }
  return p;
}

BenchResult describe(const Config& config, const BenchOptions& o, const Plan& p) {
  BenchResult r;
  r.config = config.name;
  r.config_file = config.source;
  r.device = p.device.str();
  r.device_name = device_name(p.device);
  r.precision = p.precision;
  r.batch_size = p.batch;
  r.text_tokens = p.tokens;
  r.threads = torch::get_num_threads();
  r.cpu_allocator = caching_cpu_allocator_installed() ? "caching" : "malloc";
  r.channels_last = o.channels_last;
  r.tf32 = p.device.is_cuda() && o.tf32;
  r.fp32_norms = o.fp32_norms;
  r.fused_adam = o.fused_adam && compat::fused_adam_available(p.device);
  r.inference_fusion = nn::to_string(o.inference_fusion);
  r.training_fusion = nn::to_string(o.training_fusion);
  r.libtorch_version = TORCH_VERSION;
  r.libmdm_version = version();
  r.machine = machine_description();
  r.warmup = o.warmup;
  r.repeats = o.repeats;
  r.peak_tflops = o.peak_tflops;
  return r;
}

// One synthetic training batch: images in [−1, 1] at the stage's top resolution, their pyramid, one t and
// noise per level, and the conditioning.
struct Inputs {
  NoisyBatch noisy;
  Conditioning cond;
  torch::Tensor t_net;  // [B] float: the step index the network sees
};

Inputs synthetic_batch(const Config& config, const MultiResDiffusion& diffusion, const Plan& p, bool channels_last,
                       at::Generator& gen) {
  const int64_t top = diffusion.resolutions()[p.levels - 1];
  auto images = torch::rand({p.batch, config.model.input_channels, top, top}, gen).mul(2).sub(1).to(p.device);
  if (channels_last) images = images.contiguous(torch::MemoryFormat::ChannelsLast);
  Inputs in;
  in.noisy =
      diffusion.add_noise(diffusion.pyramid(images, p.levels), diffusion.sample_t(p.batch, gen).to(p.device), gen);
  in.cond = detail::synthetic_conditioning(config.model, p.batch, p.tokens, p.device, gen);
  in.t_net = (in.noisy.t - 1).to(torch::kFloat);
  return in;
}

// Forward, forward + backward, and the trainer's step, each with its own peak-memory window; then, when
// asked, Chrome traces of a forward and a step, or of forward + backward without the step phase (after the
// timings, so that no timing pays for the profiler).
void measure_training(BenchResult& r, TrainingSetup& train, const Config& config, const MultiResDiffusion& diffusion,
                      const Inputs& in, const Plan& p, const BenchOptions& o,
                      const std::function<void(const std::string&)>& say) {
  auto forward = [&] {
    torch::NoGradGuard no_grad;
    compat::CudaAutocast scope(p.autocast, torch::kBFloat16);
    train.active->forward(in.noisy.z, in.t_net, in.cond);
  };
  auto backward = [&] {
    auto loss = train::training_loss(*train.active, diffusion, in.noisy, in.cond, p.levels, p.autocast);
    loss.loss.backward();
  };
  auto step = [&] {
    backward();
    train::optimizer_update(*train.adam, *train.ema, *train.model, config.train.optimizer.lr /* after warm-up */,
                            config.train.grad_clip, /*loss_finite=*/true);
  };
  bool peak_reset = true;
  say("forward");
  train.model->eval();
  r.forward = measure_phase(forward, p.device, o, r.forward_peak_bytes, peak_reset);
  say("forward + backward");
  train.model->train();
  r.forward_backward = measure_phase(
      [&] {
        backward();
        train.adam->zero_grad();
      },
      p.device, o, r.forward_backward_peak_bytes, peak_reset);
  if (o.step) {
    say("training step");
    r.step = measure_phase(step, p.device, o, r.step_peak_bytes, peak_reset);
    r.images_per_s = static_cast<double>(p.batch) / r.step.median;
    say("update (clipping, Adam, EMA)");
    backward();
    r.update = time_repeats(
        [&] {
          train::clip_grad_norm(train.adam->params(), config.train.grad_clip);
          train.adam->step(config.train.optimizer.lr);
          train.ema->update(*train.model);
        },
        p.device, o.warmup, o.repeats);
    train.adam->zero_grad();
  }
  if (!o.profile_dir.empty()) {
    try {
      say("profiling a forward and a training step into " + o.profile_dir);
      train.model->eval();
      record_trace(forward, p.device, o.profile_dir + "/forward.trace.json");
      train.model->train();
      // Without the step phase (--no-step), forward + backward, as the reference's script does then.
      record_trace(o.step ? std::function<void()>(step) : std::function<void()>(backward), p.device,
                   o.profile_dir + "/step.trace.json");
      train.adam->zero_grad();
    } catch (const Error& e) {  // the timings stand; the caller reports the missing traces
      r.profile_error = e.what();
      say("no profile: " + r.profile_error);
    }
  }
  r.peak_memory_bytes = std::max({r.forward_peak_bytes, r.forward_backward_peak_bytes, r.step_peak_bytes});
  r.memory_note = p.device.is_cuda() ? "CUDA caching allocator: peak allocated bytes per phase"
                  : peak_reset       ? "peak RSS of the process per phase (VmHWM, reset before each phase)"
                                     : "peak RSS of the process since it started (the kernel refused a reset)";
}

// FLOPs (formulas.md), achieved TFLOP/s and MFU.
void count_flops(BenchResult& r, const Config& config, const Plan& p, const BenchOptions& o,
                 const std::function<void(const std::string&)>& say) {
  r.forward_flops_per_image = forward_flops(train::inner_model_config(config.model, p.levels), p.tokens);
  r.flops_per_image = 3 * r.forward_flops_per_image;
  r.achieved_tflops = r.flops_per_image * r.images_per_s / 1e12;
  if (p.device.is_cuda() && o.step) {
    r.mfu = r.achieved_tflops / o.peak_tflops;
    if (o.measure_matmul) {
      say("bf16 matmul peak");
      r.matmul_tflops = measure_bf16_matmul_tflops(p.device);
      r.mfu_vs_matmul = r.achieved_tflops / *r.matmul_tflops;
    }
  }
}

}  // namespace

BenchResult run_benchmark(const Config& config, const BenchOptions& o,
                          const std::function<void(const std::string&)>& log) {
  auto say = [&](const std::string& line) {
    if (log) log(line);
  };
  const Plan p = make_plan(config, o);
  if (o.threads > 0) torch::set_num_threads(o.threads);
  if (p.device.is_cuda()) configure_cuda_backend(o.cudnn_benchmark, o.tf32);
  // The process-wide GroupNorm precision for this run, restored afterwards.
  struct NormPrecision {
    bool before = nn::low_precision_group_norm();
    explicit NormPrecision(bool low) { nn::set_low_precision_group_norm(low); }
    ~NormPrecision() { nn::set_low_precision_group_norm(before); }
  } norm_precision(!o.fp32_norms);
  // And the fusion settings (nn/folded_group_norm.h).
  struct FusionSettings {
    nn::Fusion inference = nn::inference_fusion(), training = nn::training_fusion();
    FusionSettings(nn::Fusion in, nn::Fusion tr) {
      nn::set_inference_fusion(in);
      nn::set_training_fusion(tr);
    }
    ~FusionSettings() {
      nn::set_inference_fusion(inference);
      nn::set_training_fusion(training);
    }
  } fusion_settings(o.inference_fusion, o.training_fusion);
  BenchResult r = describe(config, o, p);

  torch::manual_seed(o.seed);
  auto gen = at::detail::createCPUGenerator(o.seed);
  say(fmt::format("building {} on {} ({}, batch {})", config.name, r.device, p.precision, p.batch));
  TrainingSetup train = build_training(config, p.levels, p.device, o.channels_last, o.fused_adam);
  r.parameters = count_parameters(*train.model);
  MultiResDiffusion diffusion(config.model, config.diffusion);
  r.levels.assign(diffusion.resolutions().begin(), diffusion.resolutions().begin() + static_cast<int64_t>(p.levels));
  const Inputs in = synthetic_batch(config, diffusion, p, o.channels_last, gen);

  measure_training(r, train, config, diffusion, in, p, o, say);
  count_flops(r, config, p, o, say);
  r.notes.push_back(
      "the step is the trainer's (train_step.h): forward, Eq. 3 loss, backward, clipping (one host read: "
      "the gradient norm), Adam, EMA; data loading and noise drawing are not timed");
  if (p.levels < diffusion.resolutions().size()) {
    r.notes.push_back(fmt::format("stage {} trains the {} lowest level(s); Adam and the EMA cover the whole model",
                                  p.stage, p.levels));
  }
  if (o.sample && o.sample_steps > 0) {
    train.model->eval();
    train.adam->zero_grad();
    // As a cfg weight (sample_latency.cpp guides with combine_guidance directly).
    const double guidance =
        guidance_weight(config.sample.guidance_form, o.guidance_scale.value_or(config.sample.guidance_scale));
    detail::SamplingSetup setup{config,     *train.active, diffusion, p.levels, p.device,
                                p.autocast, guidance,      p.tokens,  o.seed};
    r.sample_steps = o.sample_steps;
    r.sampling = detail::measure_sampling(setup, o, r.sampler, log);
  }
  if (o.inference_fusion != nn::Fusion::Off || o.training_fusion != nn::Fusion::Off) {
    r.pointwise_backend = nn::pointwise_backend(torch::empty({0}, torch::TensorOptions().device(p.device)));
    if (const auto why = nn::jiterator_failure(); !why.empty()) {
      r.notes.push_back("fused kernels fell back to ATen's ops: " + why);
    }
    if (p.device.is_cuda()) {
      const auto check = nn::fusion_check_result(p.device, p.autocast ? torch::kBFloat16 : torch::kFloat);
      r.fusion_check = nn::to_string(check);
      if (check.ran && !check.passed) r.notes.push_back("the fused path failed its check: " + check.detail);
    }
  }
  return r;
}

}  // namespace mdm::perf
