// mdm-bench's output: a table for people, one JSON object for scripts (keys in docs/benchmarks.md; the
// reference's side, scripts/reference/bench_reference.py, writes the same keys).
#include <mdm/perf/bench.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <sstream>

namespace mdm::perf {
namespace {

std::string bytes(int64_t n) {
  if (n >= (int64_t{1} << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(n) / (1 << 30));
  return fmt::format("{:.0f} MiB", static_cast<double>(n) / (1 << 20));
}

std::string seconds(double s) {
  if (s >= 1.0) return fmt::format("{:.3f} s", s);
  return fmt::format("{:.2f} ms", s * 1e3);
}

nlohmann::ordered_json timing_json(const Timing& t) {
  return {{"median", t.median},
          {"min", t.min},
          {"max", t.max},
          {"seconds", t.seconds},
          {"cpu_median", t.cpu_median},
          {"cpu_seconds", t.cpu_seconds}};
}

template <typename T>
nlohmann::ordered_json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

// "batch1", "batch8_graphs", …
std::string latency_key(const SampleLatency& l) {
  return fmt::format("batch{}{}", l.batch, l.cuda_graph ? "_graphs" : "");
}

}  // namespace

std::string format_table(const BenchResult& r) {
  std::ostringstream out;
  out << fmt::format("mdm-bench: {} ({}), levels {}, batch {}, {}, {} ({}), {} threads, {} CPU allocator\n", r.config,
                     r.config_file, fmt::join(r.levels, "/"), r.batch_size, r.precision, r.device, r.device_name,
                     r.threads, r.cpu_allocator);
  out << fmt::format("libtorch {}, libmdm {}; {:.2f}M parameters; {}{} warm-up, {} repeats{}{}{}\n", r.libtorch_version,
                     r.libmdm_version, r.parameters / 1e6,
                     r.text_tokens > 0 ? fmt::format("{} text tokens; ", r.text_tokens) : "", r.warmup, r.repeats,
                     r.channels_last ? "; channels-last" : "", r.tf32 ? "; TF32" : "",
                     r.fp32_norms && r.precision == "bf16" ? "; float32 GroupNorm" : "");
  out << fmt::format("fused GroupNorm/SiLU/bias ops: training {}, inference {}{}{}; Adam: {}\n", r.training_fusion,
                     r.inference_fusion,
                     r.pointwise_backend.empty() ? "" : fmt::format("; kernels: {}", r.pointwise_backend),
                     r.fusion_check.empty() ? "" : fmt::format("; check: {}", r.fusion_check),
                     r.fused_adam ? "fused kernel" : "_foreach_ ops");
  out << fmt::format("{:<17} {:>11} {:>11} {:>11} {:>10} {:>12} {:>11}\n", "phase", "median", "min", "max", "images/s",
                     "peak memory", "CPU time");
  auto row = [&](const char* name, const Timing& t, int64_t peak) {
    out << fmt::format("{:<17} {:>11} {:>11} {:>11} {:>10.2f} {:>12} {:>11}\n", name, seconds(t.median), seconds(t.min),
                       seconds(t.max), r.batch_size / t.median, bytes(peak), seconds(t.cpu_median));
  };
  row("forward", r.forward, r.forward_peak_bytes);
  row("forward+backward", r.forward_backward, r.forward_backward_peak_bytes);
  if (!r.step.seconds.empty()) row("training step", r.step, r.step_peak_bytes);
  if (!r.update.seconds.empty()) {
    out << fmt::format("{:<17} {:>11} {:>11} {:>11}   (clipping, Adam, EMA on one backward's gradients)\n", "  of it: update",
                       seconds(r.update.median), seconds(r.update.min), seconds(r.update.max));
  }
  out << fmt::format("memory: {}\n", r.memory_note);
  out << fmt::format("FLOPs per image: {:.2f} GFLOPs forward, {:.2f} GFLOPs per training step",
                     r.forward_flops_per_image / 1e9, r.flops_per_image / 1e9);
  if (!r.step.seconds.empty()) out << fmt::format("; achieved {:.3f} TFLOP/s in the step", r.achieved_tflops);
  out << "\n";
  if (r.mfu) {
    out << fmt::format("MFU: {:.1f}% of {:.0f} TFLOP/s (dense bf16 peak)", 100 * *r.mfu, r.peak_tflops);
    if (r.mfu_vs_matmul) {
      out << fmt::format("; {:.1f}% of the measured bf16 matmul ({:.0f} TFLOP/s)", 100 * *r.mfu_vs_matmul,
                         *r.matmul_tflops);
    }
    out << "\n";
  }
  if (!r.sampling.empty()) {
    out << fmt::format("sampling: {}\n", r.sampler);
    for (const auto& l : r.sampling) {
      const std::string what = fmt::format("batch {}{}", l.batch, l.cuda_graph ? ", CUDA graph" : "");
      if (l.seconds) {
        out << fmt::format("  {:<22} {:>11} per image {:>11}  {}\n", what, seconds(l.seconds->median),
                           seconds(l.seconds->median / l.batch), l.note);
      } else {
        out << fmt::format("  {:<22} {}\n", what, l.note);
      }
    }
  }
  for (const auto& n : r.notes) out << "note: " << n << "\n";
  return out.str();
}

std::string to_json(const BenchResult& r) {
  nlohmann::ordered_json j;
  j["config"] = r.config;
  j["config_file"] = r.config_file;
  j["batch_size"] = r.batch_size;
  j["precision"] = r.precision;
  j["device"] = r.device;
  j["device_name"] = r.device_name;
  j["threads"] = r.threads;
  j["cpu_allocator"] = r.cpu_allocator;
  j["levels"] = r.levels;
  j["text_tokens"] = r.text_tokens;
  j["parameters"] = r.parameters;
  j["channels_last"] = r.channels_last;
  j["tf32"] = r.tf32;
  j["fp32_norms"] = r.fp32_norms;
  j["fused_adam"] = r.fused_adam;
  j["training_fusion"] = r.training_fusion;
  j["inference_fusion"] = r.inference_fusion;
  if (!r.pointwise_backend.empty()) j["pointwise_backend"] = r.pointwise_backend;
  if (!r.fusion_check.empty()) j["fusion_check"] = r.fusion_check;
  if (!r.profile_error.empty()) j["profile_error"] = r.profile_error;
  j["libtorch_version"] = r.libtorch_version;
  j["libmdm_version"] = r.libmdm_version;
  j["machine"] = r.machine;
  j["warmup"] = r.warmup;
  j["repeats"] = r.repeats;
  j["forward_s"] = r.forward.median;
  j["forward_backward_s"] = r.forward_backward.median;
  const bool step = !r.step.seconds.empty();
  j["step_s"] = step ? nlohmann::ordered_json(r.step.median) : nlohmann::ordered_json(nullptr);
  j["forward_cpu_s"] = r.forward.cpu_median;
  j["forward_backward_cpu_s"] = r.forward_backward.cpu_median;
  j["step_cpu_s"] = step ? nlohmann::ordered_json(r.step.cpu_median) : nlohmann::ordered_json(nullptr);
  j["timings"] = {{"forward", timing_json(r.forward)}, {"forward_backward", timing_json(r.forward_backward)}};
  if (step) j["timings"]["step"] = timing_json(r.step);
  j["update_s"] = r.update.seconds.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.update.median);
  if (!r.update.seconds.empty()) j["timings"]["update"] = timing_json(r.update);
  j["images_per_s"] = step ? nlohmann::ordered_json(r.images_per_s) : nlohmann::ordered_json(nullptr);
  j["peak_memory_bytes"] = r.peak_memory_bytes;
  j["peak_memory_by_phase"] = {{"forward", r.forward_peak_bytes}, {"forward_backward", r.forward_backward_peak_bytes}};
  if (step) j["peak_memory_by_phase"]["step"] = r.step_peak_bytes;
  j["memory_note"] = r.memory_note;
  j["forward_flops_per_image"] = r.forward_flops_per_image;
  j["flops_per_image"] = r.flops_per_image;
  j["achieved_tflops"] = step ? nlohmann::ordered_json(r.achieved_tflops) : nlohmann::ordered_json(nullptr);
  j["mfu"] = optional_json(r.mfu);
  j["peak_tflops"] = r.peak_tflops;
  j["matmul_tflops"] = optional_json(r.matmul_tflops);
  j["mfu_vs_matmul"] = optional_json(r.mfu_vs_matmul);
  nlohmann::ordered_json latency = nlohmann::ordered_json::object(), notes = nlohmann::ordered_json::object();
  for (const auto& l : r.sampling) {
    latency[latency_key(l)] = l.seconds ? nlohmann::ordered_json(l.seconds->median) : nlohmann::ordered_json(nullptr);
    if (!l.note.empty()) notes[latency_key(l)] = l.note;
  }
  j["sample_latency_s"] = latency;
  j["sample_notes"] = notes;
  j["sampler"] = r.sampler;
  j["sample_steps"] = r.sample_steps;
  j["notes"] = r.notes;
  return j.dump();
}

}  // namespace mdm::perf
