// The health monitor of a process group (internal to src/distributed/): a thread that writes this rank's
// heartbeat into the rendezvous store, watches for a failure another rank reported there, and notices when
// the store itself is gone; plus the diagnosis a failed collective uses to say which rank is at fault.
//
// Store keys: mdm/hb/<rank> = "<beat> <step>", mdm/failed = "rank R: why" (the first failure wins),
// mdm/failed_seen = how many other ranks have read it.
#pragma once

#if MDM_HAVE_C10D

#include "c10d_compat.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace mdm::distributed {

class HealthMonitor {
 public:
  struct Options {
    int rank = 0, size = 1;
    std::string store_addr;  // host:port, for messages
    std::chrono::milliseconds interval{1000};
    std::chrono::milliseconds timeout{60000};  // the store unreachable this long is a failure
    bool exit_on_peer_failure = true;
  };

  // Two store clients: `beat_store` for the thread alone, `query_store` for diagnose/report_failure on
  // the caller's thread (a heartbeat blocked on a frozen store must not hold up the diagnosis).
  HealthMonitor(c10::intrusive_ptr<c10d_compat::Store> beat_store, c10::intrusive_ptr<c10d_compat::Store> query_store,
                Options options);
  ~HealthMonitor();  // stops the thread

  void set_step(int64_t step) { step_.store(step); }
  // See ProcessGroup::diagnose / report_failure. Both mark this rank as failing, so the thread no longer
  // ends the process for a peer's report (the main thread is already producing its own error).
  std::string diagnose(const std::string& operation, const std::string& cause);
  std::string report_failure(const std::string& message);

 private:
  void run();
  void beat();
  // The failure message in `store`, if any ("" when none); throws when the store is unreachable.
  static std::string posted_failure(c10d_compat::Store& store);
  [[noreturn]] void exit_process(const std::string& message);

  c10::intrusive_ptr<c10d_compat::Store> beat_store_, query_store_;
  Options options_;
  std::atomic<int64_t> step_{0};
  std::atomic<bool> failing_{false};
  int64_t beats_ = 0;
  std::mutex mutex_;  // guards stop_
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace mdm::distributed

#endif  // MDM_HAVE_C10D
