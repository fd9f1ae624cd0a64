#include <mdm/perf/device.h>
#include <mdm/perf/timing.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <sys/resource.h>

#include <fstream>
#include <string>

#if MDM_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace mdm::perf {
namespace {

[[noreturn]] void no_cuda(const char* what) {
  throw Error(fmt::format("{}: this libmdm was built against a LibTorch without CUDA", what));
}

#if MDM_WITH_CUDA
c10::DeviceIndex cuda_index(const torch::Device& device) {
  return device.has_index() ? device.index() : c10::cuda::current_device();
}
#endif

// A "Key:   value kB" line of /proc/self/status, in bytes; -1 when absent.
int64_t proc_status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;
  }
  return -1;
}

}  // namespace

bool built_with_cuda() {
#if MDM_WITH_CUDA
  return true;
#else
  return false;
#endif
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

bool reset_peak_memory(const torch::Device& device) {
  if (device.is_cuda()) {
#if MDM_WITH_CUDA
    c10::cuda::CUDACachingAllocator::resetPeakStats(cuda_index(device));
    return true;
#else
    no_cuda("reset_peak_memory");
#endif
  }
  // "5" resets the high-water mark VmHWM to the current RSS (Linux ≥ 4.0, proc(5)).
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  if (!clear) return false;
  // Some kernels take the write and keep the old mark (the GPU machine's did): a reset that happened left
  // VmHWM at the current RSS, give or take the pages touched since.
  const int64_t hwm = proc_status_bytes("VmHWM"), rss = proc_status_bytes("VmRSS");
  return hwm >= 0 && rss >= 0 && hwm <= rss + (int64_t{16} << 20);
}

int64_t peak_memory_bytes(const torch::Device& device) {
  if (device.is_cuda()) {
#if MDM_WITH_CUDA
    // allocated_bytes[0]: StatType::AGGREGATE, in LibTorch 1.13 and 2.x alike.
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(cuda_index(device));
    return stats.allocated_bytes[0].peak;
#else
    no_cuda("peak_memory_bytes");
#endif
  }
  const int64_t hwm = proc_status_bytes("VmHWM");
  if (hwm >= 0) return hwm;
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;  // Linux: KiB
}

std::string device_name(const torch::Device& device) {
  if (device.is_cuda()) {
#if MDM_WITH_CUDA
    return at::cuda::getDeviceProperties(cuda_index(device))->name;
#else
    no_cuda("device_name");
#endif
  }
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "CPU";
}

void configure_cuda_backend(bool cudnn_benchmark, bool tf32) {
  auto& ctx = at::globalContext();
  ctx.setBenchmarkCuDNN(cudnn_benchmark);
  ctx.setAllowTF32CuBLAS(tf32);
  ctx.setAllowTF32CuDNN(tf32);
}

double measure_bf16_matmul_tflops(const torch::Device& device, int64_t n, int64_t repeats) {
  if (!device.is_cuda())
    throw Error("measure_bf16_matmul_tflops: the bf16 matmul peak is measured on CUDA devices only");
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  auto a = torch::randn({n, n}, options), b = torch::randn({n, n}, options), c = torch::empty({n, n}, options);
  constexpr int64_t kProducts = 10;
  const auto timing = time_repeats(
      [&] {
        for (int64_t i = 0; i < kProducts; ++i) torch::mm_out(c, a, b);
      },
      device, /*warmup=*/2, repeats);
  return 2.0 * static_cast<double>(n) * n * n * kProducts / timing.median / 1e12;
}

}  // namespace mdm::perf
