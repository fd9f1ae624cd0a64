// A trace of one call of a function, for finding where a step's time goes: LibTorch's Kineto profiler
// records every operator on the CPU and, on CUDA, every kernel with its GPU time, and writes a Chrome
// trace (open it in chrome://tracing or Perfetto; scripts/profile-summary.py sums it by kernel, or by
// operator's own time where it holds no GPU kernels). A LibTorch without Kineto (Debian's) records the
// operators alone; they are written in the layout of PyTorch's exporter for that case.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace mdm::perf {

// Runs `fn` once under the profiler and writes the trace to `path` (JSON). Waits for the device before
// stopping, so that every kernel `fn` queued is in the trace. Throws mdm::Error when the profiler recorded
// nothing or the file cannot be written.
void record_trace(const std::function<void()>& fn, const torch::Device& device, const std::string& path);

}  // namespace mdm::perf
