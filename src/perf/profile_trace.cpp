#include <mdm/perf/device.h>
#include <mdm/perf/profile_trace.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <filesystem>
#include <set>

namespace mdm::perf {

void record_trace(const std::function<void()>& fn, const torch::Device& device, const std::string& path) {
  namespace profiler = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  using torch::profiler::impl::ProfilerConfig;
  using torch::profiler::impl::ProfilerState;
  std::set<ActivityType> activities{ActivityType::CPU};
  if (device.is_cuda()) activities.insert(ActivityType::CUDA);
  const ProfilerConfig config(ProfilerState::KINETO);
  std::unique_ptr<profiler::ProfilerResult> result;
  try {
    synchronize(device);
    profiler::prepareProfiler(config, activities);
    profiler::enableProfiler(config, activities);
    fn();
    synchronize(device);
    result = profiler::disableProfiler();
  } catch (const c10::Error& e) {
    throw Error(fmt::format("profiling into {}: {}", path, e.what_without_backtrace()));
  }
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);
  try {
    result->save(path);
  } catch (const c10::Error& e) {
    throw Error(fmt::format("{}: cannot write the trace ({})", path, e.what_without_backtrace()));
  }
  if (!std::filesystem::exists(path)) throw Error(fmt::format("{}: the profiler wrote no trace", path));
}

}  // namespace mdm::perf
