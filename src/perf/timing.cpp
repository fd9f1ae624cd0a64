#include <mdm/perf/device.h>
#include <mdm/perf/timing.h>
#include <mdm/util/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace mdm::perf {
namespace {

// CPU time of the whole process (every thread), as Python's time.process_time().
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

double median(std::vector<double> values) {
  if (values.empty()) throw Error("median: no values");
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

Timing summarize_timing(std::vector<double> seconds, std::vector<double> cpu_seconds) {
  if (seconds.empty()) throw Error("summarize_timing: no timings");
  Timing t;
  t.median = median(seconds);
  t.min = *std::min_element(seconds.begin(), seconds.end());
  t.max = *std::max_element(seconds.begin(), seconds.end());
  t.seconds = std::move(seconds);
  if (!cpu_seconds.empty()) t.cpu_median = median(cpu_seconds);
  t.cpu_seconds = std::move(cpu_seconds);
  return t;
}

Timing time_repeats(const std::function<void()>& fn, const torch::Device& device, int64_t warmup, int64_t repeats) {
  if (repeats < 1) throw Error(fmt::format("repeats must be at least 1, got {}", repeats));
  for (int64_t i = 0; i < warmup; ++i) fn();
  synchronize(device);
  std::vector<double> seconds, cpu_seconds;
  for (int64_t i = 0; i < repeats; ++i) {
    const double cpu_start = process_cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    fn();
    synchronize(device);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    cpu_seconds.push_back(process_cpu_seconds() - cpu_start);
  }
  return summarize_timing(std::move(seconds), std::move(cpu_seconds));
}

}  // namespace mdm::perf
