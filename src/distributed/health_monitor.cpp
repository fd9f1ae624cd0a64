// The health monitor; see health_monitor.h.
#if MDM_HAVE_C10D

#include "health_monitor.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

namespace mdm::distributed {
namespace {

using Clock = std::chrono::steady_clock;
const std::string kFailed = "mdm/failed";
const std::string kSeen = "mdm/failed_seen";

std::string hb_key(int rank) { return "mdm/hb/" + std::to_string(rank); }
std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

// A posted failure is "RANK\nmessage".
int failure_rank(const std::string& posted) { return std::atoi(posted.substr(0, posted.find('\n')).c_str()); }
std::string failure_message(const std::string& posted) {
  const size_t nl = posted.find('\n');
  return nl == std::string::npos ? posted : posted.substr(nl + 1);
}

// "<beat> <step>" → the step.
std::string step_of(const std::string& heartbeat) {
  const size_t sp = heartbeat.find(' ');
  return sp == std::string::npos ? "?" : heartbeat.substr(sp + 1);
}

}  // namespace

HealthMonitor::HealthMonitor(c10::intrusive_ptr<c10d_compat::Store> beat_store,
                             c10::intrusive_ptr<c10d_compat::Store> query_store, Options options)
    : beat_store_(std::move(beat_store)), query_store_(std::move(query_store)), options_(std::move(options)) {
  beat();  // visible before any collective can fail
  thread_ = std::thread([this] { run(); });
}

HealthMonitor::~HealthMonitor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HealthMonitor::beat() {
  beat_store_->set(hb_key(options_.rank), bytes(fmt::format("{} {}", ++beats_, step_.load())));
}

std::string HealthMonitor::posted_failure(c10d_compat::Store& store) {
  if (!store.check({kFailed})) return "";
  return text(store.get(kFailed));
}

void HealthMonitor::exit_process(const std::string& message) {
  std::fprintf(stderr, "mdm: %s\n", message.c_str());
  std::fflush(nullptr);
  std::_Exit(1);
}

void HealthMonitor::run() {
  std::optional<Clock::time_point> unreachable_since;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (wake_.wait_for(lock, options_.interval, [this] { return stop_; })) return;
    }
    try {
      beat();
      const std::string posted = posted_failure(*beat_store_);
      unreachable_since.reset();
      if (!posted.empty() && failure_rank(posted) != options_.rank && !failing_.load()) {
        beat_store_->add(kSeen, 1);
        if (options_.exit_on_peer_failure) {
          exit_process(fmt::format("rank {}: stopping because rank {} failed: {}", options_.rank, failure_rank(posted),
                                   failure_message(posted)));
        }
      }
    } catch (const std::exception& e) {
      const auto now = Clock::now();
      if (!unreachable_since) unreachable_since = now;
      const double seconds = std::chrono::duration<double>(now - *unreachable_since).count();
      if (now - *unreachable_since >= options_.timeout && !failing_.load() && options_.exit_on_peer_failure) {
        exit_process(fmt::format(
            "rank {}: the rendezvous store at {} has been unreachable for {:.0f} s ({}); rank 0 serves it, so rank 0 "
            "has most likely died or its host is unreachable",
            options_.rank, options_.store_addr, seconds, e.what()));
      }
    }
  }
}

std::string HealthMonitor::diagnose(const std::string& operation, const std::string& cause) {
  failing_ = true;
  std::string why;
  try {
    std::string posted = posted_failure(*query_store_);
    if (posted.empty()) {
      // Who is still beating? Two looks, 2.5 heartbeat periods apart.
      auto snapshot = [&] {
        std::vector<std::string> beats(static_cast<size_t>(options_.size));
        for (int r = 0; r < options_.size; ++r) {
          if (query_store_->check({hb_key(r)})) beats[r] = text(query_store_->get(hb_key(r)));
        }
        return beats;
      };
      const auto first = snapshot();
      std::this_thread::sleep_for(options_.interval * 5 / 2);
      const auto second = snapshot();
      posted = posted_failure(*query_store_);  // a rank may have reported meanwhile
      if (posted.empty()) {
        std::vector<std::string> silent;
        for (int r = 0; r < options_.size; ++r) {
          if (r != options_.rank && first[r] == second[r]) {
            silent.push_back(fmt::format("rank {} (last heartbeat at step {})", r, step_of(second[r])));
          }
        }
        const double waited = std::chrono::duration<double>(options_.interval * 5 / 2).count();
        why = silent.empty() ? "every rank still sends heartbeats, so the collective itself failed"
                             : fmt::format(
                                   "{} stopped answering: no heartbeat for {:.1f} s (the process died, hung or "
                                   "was stopped)",
                                   fmt::join(silent, ", "), waited);
      }
    }
    if (!posted.empty() && failure_rank(posted) != options_.rank) {
      why = fmt::format("rank {} failed: {}", failure_rank(posted), failure_message(posted));
      query_store_->add(kSeen, 1);
    }
  } catch (const std::exception& e) {
    why =
        fmt::format("the rendezvous store at {} is unreachable ({}); rank 0 serves it, so rank 0 has most likely died",
                    options_.store_addr, e.what());
  }
  if (why.empty()) why = "this rank had already reported a failure";
  return fmt::format("rank {}: {} failed: {} [{}]", options_.rank, operation, why, cause);
}

std::string HealthMonitor::report_failure(const std::string& message) {
  failing_ = true;
  try {
    const auto mine = bytes(fmt::format("{}\n{}", options_.rank, message));
    const bool first = query_store_->compareSet(kFailed, {}, mine) == mine;  // else another rank's came first
    if (first && options_.rank == 0 && options_.size > 1) {
      // The store lives in this process: give the other ranks a few heartbeats to read the reason.
      const auto deadline = Clock::now() + options_.interval * 2 + std::chrono::milliseconds(250);
      while (Clock::now() < deadline && query_store_->add(kSeen, 0) < options_.size - 1) {
        std::this_thread::sleep_for(options_.interval / 4);
      }
    }
  } catch (const std::exception&) {
    // The store is gone: the other ranks learn of it from their own collectives.
  }
  return message;
}

}  // namespace mdm::distributed

#endif  // MDM_HAVE_C10D
