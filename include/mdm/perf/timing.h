// Repeated wall-clock timing of one piece of device work: warm-up runs, then timed runs that each end when
// the device is idle (the only host-device synchronisation of a run), summarised by median, min and max.
// The process's CPU time (all threads) is recorded next to it: on a CPU shared with other work it measures
// the work done rather than the share of the cores received, so it compares two programs more stably.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace mdm::perf {

struct Timing {
  std::vector<double> seconds;  // wall-clock, one per repeat, in order
  double median = 0, min = 0, max = 0;
  std::vector<double> cpu_seconds;  // the process's CPU time (user + system, all threads) per repeat
  double cpu_median = 0;
};

// The median of a list (of an even count: the mean of the middle two). Throws mdm::Error on an empty list.
double median(std::vector<double> values);
// Median, min and max of `seconds`, and the median of `cpu_seconds` when given. Throws mdm::Error on an
// empty list.
Timing summarize_timing(std::vector<double> seconds, std::vector<double> cpu_seconds = {});

// Runs `fn` `warmup` times, synchronises, then `repeats` times, each timed from its start to the
// device's synchronize after it.
Timing time_repeats(const std::function<void()>& fn, const torch::Device& device, int64_t warmup, int64_t repeats);

}  // namespace mdm::perf
