// Sampling latency: the configured sampler (run_sampler, as mdm-sample runs it) over a whole chain, with
// guidance when the config asks for it, eagerly and — on CUDA — with the denoiser replayed from a graph.
#include <mdm/diffusion/cuda_graph_denoiser.h>
#include <mdm/diffusion/guidance.h>
#include <mdm/diffusion/sampler.h>
#include <mdm/perf/device.h>
#include <mdm/perf/profile_trace.h>
#include <mdm/util/compat.h>
#include <mdm/util/error.h>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>

#include "bench_internal.h"

namespace mdm::perf::detail {
namespace {

SamplerOptions sampler_options(const SamplingSetup& s, int64_t steps) {
  SamplerOptions so;
  so.sampler = s.config.sample.sampler;
  so.steps = steps;
  so.eta = s.config.sample.eta;
  so.spacing = s.config.sample.spacing;
  so.prediction = s.diffusion.prediction();
  so.threshold =
      ThresholdOptions{s.config.sample.threshold, s.config.sample.threshold_percentile, s.config.sample.threshold_max};
  return so;
}

bool guided(const SamplingSetup& s) {
  return s.config.model.conditioning != ConditioningKind::None && s.guidance_scale != 1.0;
}

// The network at a step index held in a tensor: [uncond; cond] in one call
// and the guided combination when the config guides.
TensorDenoiseFn make_network(const SamplingSetup& s, std::shared_ptr<Conditioning> cond) {
  const bool guide = guided(s);
  const double scale = s.guidance_scale;
  return [&s, guide, scale, cond](const std::vector<torch::Tensor>& z, const torch::Tensor& t) {
    torch::NoGradGuard no_grad;
    compat::CudaAutocast autocast(s.autocast, torch::kBFloat16);
    auto out = s.model.forward(guide ? duplicate_batch(z) : z, guide ? torch::cat({t, t}) : t, *cond);
    for (auto& x : out) x = x.to(torch::kFloat);
    return guide ? combine_guidance(out, scale) : out;
  };
}

std::shared_ptr<Conditioning> make_conditioning(const SamplingSetup& s, int64_t batch) {
  auto gen = at::detail::createCPUGenerator(s.seed + 1);
  auto cond = std::make_shared<Conditioning>(
      synthetic_conditioning(s.config.model, batch, s.text_tokens, s.device, gen, /*unconditional=*/false));
  if (!guided(s)) return cond;
  // The unconditional half: the null class, or other (random) text features standing in for the
  // negative prompt's encoding.
  const auto uncond =
      synthetic_conditioning(s.config.model, batch, s.text_tokens, s.device, gen, /*unconditional=*/true);
  if (cond->labels.defined()) cond->labels = torch::cat({uncond.labels, cond->labels});
  if (cond->text.defined()) {
    cond->text = torch::cat({uncond.text, cond->text});
    cond->text_mask = torch::cat({uncond.text_mask, cond->text_mask});
  }
  return cond;
}

// Initial noise of every level of the stage, lowest first: [batch, C, r, r].
std::vector<torch::Tensor> initial_noise(const SamplingSetup& s, NoiseSource& noise, int64_t batch) {
  std::vector<torch::Tensor> z;
  for (size_t l = 0; l < s.levels; ++l) {
    const int64_t r = s.diffusion.resolutions()[l];
    auto like = torch::empty({batch, s.config.model.input_channels, r, r}, torch::device(s.device));
    z.push_back(noise.normal(like));
  }
  return z;
}

// One chain of `steps` network calls from fresh noise of the batch's seeds (the same noise every time).
void run_chain(const SamplingSetup& s, const DenoiseFn& denoise, int64_t batch, int64_t steps,
               const std::function<void()>& started = {}) {
  std::vector<uint64_t> seeds;
  for (int64_t i = 0; i < batch; ++i) seeds.push_back(s.seed + static_cast<uint64_t>(i));
  const std::vector<NoiseSchedule> schedules(s.diffusion.schedules().begin(),
                                             s.diffusion.schedules().begin() + static_cast<int64_t>(s.levels));
  NoiseSource noise(seeds);
  auto z = initial_noise(s, noise, batch);
  synchronize(s.device);
  if (started) started();
  run_sampler(denoise, schedules, z, sampler_options(s, steps), noise);
}

// One timed chain per repeat.
Timing time_chains(const SamplingSetup& s, const DenoiseFn& denoise, int64_t batch, const BenchOptions& o) {
  std::vector<double> seconds;
  for (int64_t i = 0; i < o.sample_repeats; ++i) {
    std::chrono::steady_clock::time_point start;
    run_chain(s, denoise, batch, o.sample_steps, [&start] { start = std::chrono::steady_clock::now(); });
    synchronize(s.device);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return summarize_timing(std::move(seconds));
}

// With BenchOptions::profile_dir: a Chrome trace of a short chain (kSampleTraceSteps network calls) into
// sample-b<batch>[-graphs].trace.json, where scripts/profile-summary.py reads how busy the GPU kept between
// the steps. A failed trace leaves the timing and says so in the note.
constexpr int64_t kSampleTraceSteps = 10;

void trace_chain(SampleLatency& l, const SamplingSetup& s, const DenoiseFn& denoise, const BenchOptions& o) {
  if (o.profile_dir.empty()) return;
  const std::string path =
      fmt::format("{}/sample-b{}{}.trace.json", o.profile_dir, l.batch, l.cuda_graph ? "-graphs" : "");
  try {
    record_trace([&] { run_chain(s, denoise, l.batch, std::min(kSampleTraceSteps, o.sample_steps)); }, s.device,
                 path);
  } catch (const std::exception& e) {  // the profiler's own errors too: the timing stands either way
    l.note += fmt::format("{}no trace: {}", l.note.empty() ? "" : "; ", e.what());
  }
}

SampleLatency measure_eager(const SamplingSetup& s, int64_t batch, const BenchOptions& o) {
  SampleLatency l;
  l.batch = batch;
  auto network = make_network(s, make_conditioning(s, batch));
  const torch::Device device = s.device;
  DenoiseFn denoise = [network, device](const std::vector<torch::Tensor>& z, int64_t t) {
    return network(
        z, torch::full({z.front().size(0)}, static_cast<double>(t - 1), torch::dtype(torch::kFloat).device(device)));
  };
  {  // warm-up: two network calls
    NoiseSource noise(std::vector<uint64_t>(static_cast<size_t>(batch), s.seed));
    auto z = initial_noise(s, noise, batch);
    for (int i = 0; i < 2; ++i) denoise(z, s.diffusion.num_train_steps());
  }
  l.seconds = time_chains(s, denoise, batch, o);
  if (guided(s)) l.note = fmt::format("guidance {}: the network runs on {} images", s.guidance_scale, 2 * batch);
  trace_chain(l, s, denoise, o);
  return l;
}

SampleLatency measure_graphed(const SamplingSetup& s, int64_t batch, const BenchOptions& o) {
  SampleLatency l;
  l.batch = batch;
  l.cuda_graph = true;
  if (!s.device.is_cuda()) {
    l.note = "graphs: n/a (CUDA graphs need a CUDA device)";
    return l;
  }
  if (!o.cuda_graphs) {
    l.note = "graphs: n/a (not requested)";
    return l;
  }
  try {
    auto network = make_network(s, make_conditioning(s, batch));
    NoiseSource noise(std::vector<uint64_t>(static_cast<size_t>(batch), s.seed));
    CudaGraphDenoiser graph(network, initial_noise(s, noise, batch));
    l.seconds = time_chains(s, graph.as_denoise_fn(), batch, o);
    l.note = "the denoiser replayed from one CUDA graph per step";
    trace_chain(l, s, graph.as_denoise_fn(), o);
  } catch (const std::exception& e) {
    l.note = fmt::format("graphs: n/a (capture failed: {})", e.what());
  }
  return l;
}

}  // namespace

std::vector<SampleLatency> measure_sampling(const SamplingSetup& s, const BenchOptions& o, std::string& sampler,
                                            const std::function<void(const std::string&)>& log) {
  if (o.sample_repeats < 1) throw Error(fmt::format("sample repeats must be at least 1, got {}", o.sample_repeats));
  const auto so = sampler_options(s, o.sample_steps);
  sampler = fmt::format("{} ({} steps, {} spacing, threshold {}, guidance {})", so.sampler, so.steps,
                        resolve_spacing(so), so.threshold.kind, guided(s) ? s.guidance_scale : 1.0);
  std::vector<SampleLatency> out;
  for (int64_t batch : o.sample_batches) {
    if (batch < 1) throw Error(fmt::format("sample batch {}: must be positive", batch));
    if (log) log(fmt::format("sampling, batch {}", batch));
    out.push_back(measure_eager(s, batch, o));
    if (s.device.is_cuda() && o.cuda_graphs && log) log(fmt::format("sampling, batch {}, CUDA graph", batch));
    out.push_back(measure_graphed(s, batch, o));
  }
  return out;
}

}  // namespace mdm::perf::detail
