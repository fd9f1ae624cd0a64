// SIGINT / SIGTERM → a flag long-running work polls (pre-emptible clusters send SIGTERM and wait a while):
// the trainer finishes its step, saves a checkpoint and exits 0. A second SIGINT ends the process at once.
#pragma once

#include <atomic>

namespace mdm::util {

class StopSignal {
 public:
  // Installs the handlers; the destructor restores the previous ones. One instance at a time.
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // Set by the handlers (and by request()); safe to read from any thread.
  static const std::atomic<bool>& flag();
  static void request();
  static int last_signal();  // the signal that set the flag (0 when none or requested in code)
};

}  // namespace mdm::util
