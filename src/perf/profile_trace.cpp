#include <mdm/perf/device.h>
#include <mdm/perf/profile_trace.h>
#include <mdm/util/compat.h>
#include <mdm/util/error.h>

#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace mdm::perf {

namespace {

// A LibTorch built without Kineto (Debian's) still records every operator but cannot save a trace. Its
// events are written here in the layout of PyTorch's own exporter for that case (a JSON array of complete
// events, "pid": "CPU functions"), so that one summary script reads both sides (the reference's Python,
// also Debian's, writes that layout).
void write_operator_trace(const torch::autograd::profiler::ProfilerResult& result, const std::string& path) {
  nlohmann::json events = nlohmann::json::array();
  double origin = -1;
  for (const auto& e : result.events()) {
    const auto [start, duration] = compat::profiler_event_times_us(e);
    if (origin < 0 || start < origin) origin = start;
  }
  for (const auto& e : result.events()) {
    const auto [start, duration] = compat::profiler_event_times_us(e);
    events.push_back({{"name", e.name()},
                      {"ph", "X"},
                      {"ts", start - origin},
                      {"dur", duration},
                      {"tid", e.startThreadId()},
                      {"pid", "CPU functions"},
                      {"args", nlohmann::json::object()}});
  }
  std::ofstream out(path);
  out << events.dump();
  out.close();
  if (!out) throw Error(fmt::format("{}: cannot write the trace", path));
}

}  // namespace

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
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(fmt::format("{}: cannot create its directory ({})", path, ec.message()));
  try {
    result->save(path);
  } catch (const c10::Error& e) {
    if (result->events().empty()) {
      throw Error(fmt::format("{}: cannot write the trace ({})", path, e.what_without_backtrace()));
    }
    write_operator_trace(*result, path);  // no Kineto: the operators alone
  }
  if (!std::filesystem::exists(path)) throw Error(fmt::format("{}: the profiler wrote no trace", path));
}

}  // namespace mdm::perf
