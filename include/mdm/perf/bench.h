// The training and sampling benchmark behind mdm-bench (issue #8): for the model of a config on a device,
// the time of a forward pass, of forward + backward through Eq. 3's loss, and of the full training step
// (forward, loss, backward, clipping, Adam, EMA: train/train_step.h, what mdm-train runs), each after
// warm-up and over repeats (median, min, max); images/s, peak memory, model FLOPs per image
// (formulas.md "FLOPs") and MFU on CUDA; and the latency of the configured sampler at a few batch
// sizes, on CUDA also with the denoiser replayed from a CUDA graph. Inputs are synthetic: images at every
// level of the stage, random class labels or random text features (no text encoder is needed).
#pragma once

#include <mdm/config/config.h>
#include <mdm/nn/folded_group_norm.h>
#include <mdm/perf/timing.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mdm::perf {

struct BenchOptions {
  std::string device = "cpu";  // cpu | cuda | cuda:N
  int64_t batch_size = 0;  // images per step; 0 = the stage's batch (train.stages[i].batch_size, else train.batch_size)
  std::string precision;   // fp32 | bf16 (CUDA autocast); "" = train.precision on CUDA, fp32 on the CPU
  int64_t stage = 0;       // 1-based index into train.stages (which levels train); 0 = the last stage
  int64_t warmup = 1;      // untimed runs before each measured phase
  int64_t repeats = 5;     // timed runs per phase
  int threads = 0;         // intra-op threads (torch::set_num_threads); 0 = LibTorch's default
  int64_t text_tokens = 0;     // tokens of the synthetic text features; 0 = text.max_tokens (128)
  bool step = true;            // measure the training step (images/s, MFU); off: forward and forward+backward only
  bool sample = true;          // measure sampling latency
  int64_t sample_steps = 250;  // network calls per sampling chain
  std::vector<int64_t> sample_batches = {1, 8};
  int64_t sample_repeats = 1;            // timed chains per batch size (after a short warm-up of the denoiser)
  bool cuda_graphs = true;               // on CUDA, also sample with the denoiser replayed from a CUDA graph
  std::optional<double> guidance_scale;  // classifier-free guidance while sampling; empty = sample.guidance_scale
  double peak_tflops = 989.0;            // the device's dense bf16 peak for MFU (H100 SXM)
  bool measure_matmul = true;            // on CUDA, measure a large bf16 matmul and report MFU against it too
  bool channels_last = false;            // 4-D weights and inputs in channels-last memory format
  bool tf32 = false;                     // on CUDA, TF32 for fp32 matmuls and convolutions
  std::string profile_dir;               // when set: Chrome traces of one forward and one step there, and of
                                         // 10 steps of each sampling chain (sample-b<batch>[-graphs].trace.json)
  bool fp32_norms = false;               // GroupNorm in float32 under autocast (nn/group_norm.h; the reference's)
  bool fused_adam = true;                // Adam's fused kernel where LibTorch has one (train::Adam::set_fused)
  // The fused GroupNorm/SiLU/bias ops (nn/folded_group_norm.h) in the training phases and while sampling.
  nn::Fusion training_fusion = nn::Fusion::Auto;
  nn::Fusion inference_fusion = nn::Fusion::Auto;
  bool cudnn_benchmark = true;           // on CUDA, let cuDNN pick the fastest algorithms for the fixed shapes
  uint64_t seed = 0;
};

struct SampleLatency {
  int64_t batch = 0;
  bool cuda_graph = false;
  std::optional<Timing> seconds;  // one whole chain of `steps` network calls; empty when not measured
  std::string note;               // why it was not measured, or how (e.g. guidance doubles the batch)
};

struct BenchResult {
  // What was measured.
  std::string config;  // the config's name
  std::string config_file;
  std::string device, device_name, precision;
  int64_t batch_size = 0;
  std::vector<int64_t> levels;  // resolutions trained by the stage, lowest first
  int64_t text_tokens = 0;      // 0 for configs without text conditioning
  int threads = 0;
  std::string cpu_allocator;  // "caching" (perf/cpu_allocator.h installed) or "malloc" (LibTorch's)
  bool channels_last = false, tf32 = false;
  bool fp32_norms = false;  // GroupNorm ran in float32 under bf16 autocast
  bool fused_adam = false;  // the step's Adam ran LibTorch's fused kernel (else the _foreach_ ops)
  std::string inference_fusion, training_fusion;  // the settings the run used ("off", "auto", "always")
  std::string pointwise_backend;   // how the fused path's kernels ran: "jiterator" or "aten" (nn/pointwise.h)
  std::string fusion_check;        // on CUDA, the fused path's check in the activations' dtype (nn/fusion_check.h):
                                   // "passed (...)", "failed: ..." (Auto then ran the unfused ops), "not run"
  std::string profile_error;  // why BenchOptions::profile_dir got no traces (empty: it got them, or none asked)
  int64_t parameters = 0;  // of the whole model
  std::string libtorch_version, libmdm_version, machine;
  int64_t warmup = 0, repeats = 0;

  // Timings (seconds per call on the batch) and what follows from them.
  Timing forward, forward_backward, step;  // step: no repeats when it was not measured
  // The step's update half alone (clipping, Adam, EMA), applied again and again to one backward's gradients:
  // where the optimizer's kernels (fused or _foreach_) show. Measured with the step.
  Timing update;
  double images_per_s = 0;                 // batch ÷ median step time (0 when the step was not measured)
  // Peak memory per phase: the CUDA caching allocator's peak allocated bytes, or the process's peak RSS on
  // the CPU (VmHWM, reset before each phase where the kernel allows it).
  int64_t forward_peak_bytes = 0, forward_backward_peak_bytes = 0, step_peak_bytes = 0;
  int64_t peak_memory_bytes = 0;       // the largest of the three
  std::string memory_note;             // how the peak was measured
  double forward_flops_per_image = 0;  // summary.cpp's count for the stage's model
  double flops_per_image = 0;          // a training step: 3 × forward
  double achieved_tflops = 0;          // flops_per_image × images/s
  std::optional<double> mfu;           // achieved ÷ peak_tflops (CUDA only)
  double peak_tflops = 0;
  std::optional<double> matmul_tflops;  // measured large bf16 matmul (CUDA only)
  std::optional<double> mfu_vs_matmul;  // achieved ÷ matmul_tflops
  std::vector<SampleLatency> sampling;
  std::string sampler;  // the sampler that ran, with its settings
  int64_t sample_steps = 0;
  std::vector<std::string> notes;  // settings and caveats worth printing with the numbers
};

// Runs the benchmark. `log` (optional) receives one line per phase as it starts. Throws mdm::Error /
// ConfigError naming the option at fault (an unknown device or precision, a stage that does not exist,
// bf16 on the CPU).
BenchResult run_benchmark(const Config& config, const BenchOptions& options,
                          const std::function<void(const std::string&)>& log = {});

// The table mdm-bench prints, and the JSON object of `--json` (one line, keys in docs/benchmarks.md).
std::string format_table(const BenchResult& result);
std::string to_json(const BenchResult& result);

}  // namespace mdm::perf
