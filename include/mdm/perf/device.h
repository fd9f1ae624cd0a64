// What a benchmark needs to know about the device it runs on: waiting for it, its peak memory (the CUDA
// caching allocator's peak allocated bytes, or the process's peak RSS on the CPU), its name, its backend
// settings, and the bf16 matmul rate it actually reaches (the denominator of a measured MFU).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace mdm::perf {

// True when libmdm was built against a CUDA LibTorch (MDM_WITH_CUDA): CUDA graphs and allocator
// statistics are compiled in.
bool built_with_cuda();

// Blocks until the device has finished its queued work (a no-op on the CPU).
void synchronize(const torch::Device& device);

// Starts a new peak-memory window. CUDA: resets the caching allocator's peak statistics. CPU: resets the
// process's RSS high-water mark (/proc/self/clear_refs); returns false where the kernel does not allow it or
// keeps the old mark after the write, and peak_memory_bytes then reports the peak since the process started.
bool reset_peak_memory(const torch::Device& device);
// The peak since the last reset: CUDA allocated bytes (torch.cuda.max_memory_allocated), or peak RSS.
int64_t peak_memory_bytes(const torch::Device& device);

// "NVIDIA H100 80GB HBM3", or the CPU's model name from /proc/cpuinfo.
std::string device_name(const torch::Device& device);

// CUDA backend settings for fixed-shape benchmarking: cuDNN autotuning, and TF32 for fp32 matmuls and
// convolutions (off = full fp32). No effect on the CPU.
void configure_cuda_backend(bool cudnn_benchmark, bool tf32);

// The rate of a square n×n bf16 matmul on a CUDA device, in TFLOP/s (2n³ per product), median of
// `repeats` timed batches of 10 products after warm-up. Throws mdm::Error on the CPU.
double measure_bf16_matmul_tflops(const torch::Device& device, int64_t n = 8192, int64_t repeats = 5);

}  // namespace mdm::perf
